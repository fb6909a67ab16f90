"""``dgslm preprocess`` reproduces the reference data-bin byte for byte."""

from __future__ import annotations

import shutil

import pytest
import soundfile as sf

from dgslm.cli.main import main
from dgslm.units import binarize
from dgslm.units.codes import read_code_file
from dgslm.units.dictionary import Dictionary
from dgslm.units.indexed_dataset import IndexedDataset


@pytest.mark.parametrize("workers", [1, 2])
def test_byte_identical_to_fairseq(reference, tmp_path, capsys, monkeypatch, workers):
    monkeypatch.setattr(binarize, "CHUNK_LINES", 5)  # several chunks, so workers share the files
    raw, expected = reference / "speechdlm/raw", reference / "speechdlm/data-bin"
    argv = ["preprocess", "--channels", "unitA,unitB", "--trainpref", f"{raw}/train", "--validpref", f"{raw}/valid"]
    assert main(argv + ["--destdir", str(tmp_path / "bin"), "--workers", str(workers)]) == 0
    written = sorted(p.name for p in (tmp_path / "bin").iterdir())
    assert written == sorted(p.name for p in expected.iterdir())
    for name in written:
        assert (tmp_path / "bin" / name).read_bytes() == (expected / name).read_bytes(), name
    out = capsys.readouterr().out
    assert "[unitA] Dictionary: 504 types" in out
    assert f"[unitB] {raw}/valid.unitB: 23 sents, 1898 tokens, 0.0% replaced (by <unk>)" in out
    assert f"[unitA] {raw}/train.unitA: 27 sents, 2274 tokens, 0.0% replaced (by <unk>)" in out


def test_srcdict_and_unknown_units(reference, tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "test.unitA").write_text("7 9999 7\n376\n")
    (raw / "test.unitB").write_text("7 7 8888\n499\n")
    argv = ["preprocess", "--testpref", f"{raw}/test", "--destdir", str(tmp_path / "bin")]
    assert main(argv + ["--srcdict", str(reference / "speechdlm/data-bin/dict.unitA.txt")]) == 0
    assert (tmp_path / "bin/dict.unitB.txt").read_bytes() == (
        reference / "speechdlm/data-bin/dict.unitB.txt"
    ).read_bytes()
    assert f"{raw}/test.unitA: 2 sents, 6 tokens, 16.7% replaced (by <unk>)" in capsys.readouterr().out
    assert IndexedDataset(tmp_path / "bin/test.unitA")[0].tolist() == [258, 3, 258, 2]


def test_channels_must_agree(reference, tmp_path, capsys):
    raw = tmp_path / "raw"
    shutil.copytree(reference / "speechdlm/raw", raw)
    lines = (raw / "valid.unitB").read_text().splitlines()
    lines[4] += " 1"
    (raw / "valid.unitB").chmod(0o644)
    (raw / "valid.unitB").write_text("\n".join(lines) + "\n")
    argv = [
        "preprocess",
        "--trainpref",
        f"{raw}/train",
        "--validpref",
        f"{raw}/valid",
        "--destdir",
        str(tmp_path / "bin"),
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"dgslm preprocess: error: {raw}/valid.unitB:5: ")
    assert "\n" not in err
    assert not (tmp_path / "bin").exists()  # checked before anything is written


def test_needs_a_dictionary_source(tmp_path, capsys):
    (tmp_path / "v.unitA").write_text("1\n")
    (tmp_path / "v.unitB").write_text("1\n")
    assert main(["preprocess", "--validpref", str(tmp_path / "v"), "--destdir", str(tmp_path / "bin")]) == 1
    assert "--srcdict" in capsys.readouterr().err


def test_source_lang_needs_only_source(reference, tmp_path, capsys):
    raw = reference / "speechdlm/raw"
    argv = ["preprocess", "--source-lang", "unitA", "--trainpref", f"{raw}/train", "--destdir", str(tmp_path)]
    assert main(argv) == 1
    assert "--source-lang needs --only-source" in capsys.readouterr().err
    assert main([*argv, "--only-source"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dict.unitA.txt", "train.unitA-None.unitA.bin",
                                                          "train.unitA-None.unitA.idx"]  # fmt: skip


# ---- The README's path from folders of stereo recordings to a binarised dataset:
# `dgslm encode --per-channel-dir` then `dgslm preprocess` (and `create-code-file`).


def test_recordings_to_binarised_dataset(reference, tmp_path):
    stereo, sr = sf.read(reference / "audio" / "stereo_test.wav", dtype="int16")
    for split, pieces in {"train": {"a.wav": stereo, "sub/b.flac": stereo[: len(stereo) // 2]},
                          "valid": {"c.wav": stereo[len(stereo) // 3 :, ::-1]}}.items():  # fmt: skip
        for name, wave in pieces.items():
            (tmp_path / "rec" / split / name).parent.mkdir(parents=True, exist_ok=True)
            sf.write(tmp_path / "rec" / split / name, wave, sr)
    model = ["--hubert", str(reference / "hubert" / "hubert_small.pt"), "--km", str(reference / "kmeans" / "km50.bin"),
             "--layer", "3", "--device", "cpu"]  # fmt: skip
    data = tmp_path / "data"
    for split in ("train", "valid"):
        argv = ["encode", str(tmp_path / "rec" / split), "-o", str(data / f"{split}.txt"),
                "--per-channel-dir", str(data / "raw"), "--hide-fname", *model]  # fmt: skip
        assert main(argv) == 0
    assert main(["preprocess", "--channels", "unitA,unitB", "--trainpref", str(data / "raw" / "train"),
                 "--validpref", str(data / "raw" / "valid"), "--destdir", str(data / "bin")]) == 0  # fmt: skip
    for split, count in (("train", 2), ("valid", 1)):
        records = read_code_file(data / f"{split}.txt")
        assert len(records) == count
        for channel in ("unitA", "unitB"):
            dictionary = Dictionary.load(data / "bin" / f"dict.{channel}.txt")
            dataset = IndexedDataset(data / "bin" / f"{split}.{channel}")
            assert [dictionary.string(dataset[i]) for i in range(len(dataset))] == [r[channel] for r in records]
            assert all(int(dataset[i][-1]) == dictionary.eos() for i in range(len(dataset)))


def test_per_channel_files_merge_back_into_the_code_file(reference, tmp_path):
    model = ["--hubert", str(reference / "hubert" / "hubert_small.pt"), "--km", str(reference / "kmeans" / "km50.bin"),
             "--layer", "3", "--device", "cpu"]  # fmt: skip
    wav = reference / "audio" / "stereo_test.wav"
    assert (
        main(["encode", str(wav), "-o", str(tmp_path / "codes.txt"), "--per-channel-dir", str(tmp_path), *model]) == 0
    )
    assert main(["create-code-file", str(tmp_path / "codes.unitA"), str(tmp_path / "codes.unitB"),
                 str(tmp_path / "merged.txt")]) == 0  # fmt: skip
    assert (tmp_path / "merged.txt").read_text() == (tmp_path / "codes.txt").read_text()
