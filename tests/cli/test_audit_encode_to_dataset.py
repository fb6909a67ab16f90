"""The README's path from folders of stereo recordings to a binarised dataset:
``dgslm encode --per-channel-dir`` then ``dgslm preprocess`` (and ``create-code-file``)."""

from __future__ import annotations

import soundfile as sf

from dgslm.cli.main import main
from dgslm.units.codes import read_code_file
from dgslm.units.dictionary import Dictionary
from dgslm.units.indexed_dataset import IndexedDataset


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
