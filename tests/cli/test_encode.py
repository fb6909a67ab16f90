"""``dgslm encode``: inputs, outputs, resuming and bad inputs."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from dgslm.cli.main import main
from dgslm.encoder.encode import EncodeOptions, journal_fingerprint
from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.units.codes import read_code_file


@pytest.fixture()
def setup(reference, tmp_path):
    audio = tmp_path / "audio"
    (audio / "sub").mkdir(parents=True)
    shutil.copy(reference / "audio" / "stereo_test.wav", audio / "cat.wav")
    stereo, sr = sf.read(reference / "audio" / "stereo_test.wav", dtype="int16")
    sf.write(audio / "sub" / "swapped.flac", stereo[:, ::-1], sr)
    model = [
        "--hubert",
        str(reference / "hubert" / "hubert_small.pt"),
        "--km",
        str(reference / "kmeans" / "km50.bin"),
        "--layer",
        "3",
        "--device",
        "cpu",
    ]
    expected = (reference / "kmeans" / "km50_stereo_codes.txt").read_text().splitlines()
    return tmp_path, audio, model, expected


def test_folder_to_code_file_and_per_channel_files(setup):
    tmp, audio, model, (ch1, ch2) = setup
    assert (
        main(["encode", str(audio), "-o", str(tmp / "out" / "train.txt"), "--per-channel-dir", str(tmp / "pc"), *model])
        == 0
    )
    assert read_code_file(tmp / "out" / "train.txt") == [
        {"audio": "cat", "unitA": ch1, "unitB": ch2},
        {"audio": "swapped", "unitA": ch2, "unitB": ch1},
    ]
    # the original's format, and 'cat' keeps its name (the original strip('.wav') made it 'c')
    assert (tmp / "out" / "train.txt").read_text().splitlines()[0] == str({"audio": "cat", "unitA": ch1, "unitB": ch2})
    assert (tmp / "pc" / "train.unitA").read_text().splitlines() == [f"cat-channel1|{ch1}", f"swapped-channel1|{ch2}"]
    assert (tmp / "pc" / "train.unitB").read_text().splitlines() == [f"cat-channel2|{ch2}", f"swapped-channel2|{ch1}"]
    assert not list((tmp / "out").glob(".*"))  # no journal or temporary file left


def test_manifest_shards_hide_fname_jsonl(setup):
    tmp, audio, model, (ch1, ch2) = setup
    (tmp / "m.tsv").write_text(f"{audio}\ncat.wav\t51234\nsub/swapped.flac\t51234\n")
    for shard in (0, 1):
        args = [
            "encode",
            str(tmp / "m.tsv"),
            "-o",
            str(tmp / "codes.jsonl"),
            "--num-shards",
            "2",
            "--shard-id",
            str(shard),
            "--format",
            "jsonl",
            "--per-channel-dir",
            str(tmp / "pc"),
            "--hide-fname",
            "--channels",
            "left,right",
        ]
        assert main(args + model) == 0
    assert json.loads((tmp / "codes.0-of-2.jsonl").read_text()) == {"audio": "cat", "left": ch1, "right": ch2}
    assert (tmp / "pc" / "codes.1-of-2.right").read_text() == ch1 + "\n"


@pytest.mark.parametrize("name, shard_name", [("codes", "codes-{k}-of-2"), ("codes.txt", "codes.{k}-of-2.txt")])
def test_manual_shards_write_their_own_per_channel_files_and_cat_to_one_process(setup, name, shard_name):
    """Shards run by hand (a job array): shard K writes its own code file and per-channel files,
    also for an output without a suffix (as the original's ``--out_quantized_file_path``);
    ``cat`` of the shards in order gives one process's files byte for byte."""
    tmp, audio, model, (ch1, ch2) = setup
    assert (
        main(["encode", str(audio), "-o", str(tmp / "one" / name), "--per-channel-dir", str(tmp / "one"), *model]) == 0
    )
    for k in (0, 1):
        args = ["-o", str(tmp / name), "--per-channel-dir", str(tmp / "pc"), "--num-shards", "2", "--shard-id", str(k)]
        assert main(["encode", str(audio), *args, *model]) == 0
    shards = [shard_name.format(k=k) for k in (0, 1)]
    stems = [shard.removesuffix(".txt") for shard in shards]
    assert sorted(p.name for p in tmp.iterdir() if p.is_file()) == shards
    assert sorted(p.name for p in (tmp / "pc").iterdir()) == sorted(
        f"{s}.{ch}" for s in stems for ch in ("unitA", "unitB")
    )
    assert (tmp / "pc" / f"{stems[0]}.unitA").read_text() == f"cat-channel1|{ch1}\n"
    assert (tmp / "pc" / f"{stems[1]}.unitA").read_text() == f"swapped-channel1|{ch2}\n"
    merged = {name: [tmp / shard for shard in shards]}
    merged |= {f"codes.{ch}": [tmp / "pc" / f"{stem}.{ch}" for stem in stems] for ch in ("unitA", "unitB")}
    for whole, parts in merged.items():
        assert "".join(part.read_text() for part in parts) == (tmp / "one" / whole).read_text(), whole


def test_resume_skips_finished_files(setup):
    tmp, audio, model, (ch1, ch2) = setup
    journal = tmp / ".codes.txt.partial"
    done = {"audio": "cat", "unitA": "1 2", "unitB": "3 4"}  # a previous run finished 'cat'
    encoder = UnitEncoder.from_pretrained(model[1], model[3], 3, "cpu")
    header = json.dumps({"fingerprint": journal_fingerprint(encoder, EncodeOptions())})
    journal.write_text(header + "\n" + json.dumps(done) + "\n" + '{"audio": "swa')  # ... and crashed mid-line
    assert main(["encode", str(audio), "-o", str(tmp / "codes.txt"), *model]) == 0
    assert read_code_file(tmp / "codes.txt") == [done, {"audio": "swapped", "unitA": ch2, "unitB": ch1}]
    assert not journal.exists()


def test_bad_inputs(setup, capsys):
    tmp, audio, model, (ch1, ch2) = setup
    out = ["-o", str(tmp / "codes.txt"), *model]
    (tmp / "corrupt.wav").write_bytes((audio / "cat.wav").read_bytes()[:30])
    (tmp / "text.wav").write_text("hello")
    sf.write(tmp / "mono.wav", np.zeros(8000, dtype=np.float32), 16000)
    sf.write(tmp / "empty.wav", np.zeros((0, 2), dtype=np.float32), 16000)
    for name, message in [
        ("corrupt.wav", "cannot read"),
        ("text.wav", "cannot read"),
        ("empty.wav", "empty"),
        ("mono.wav", "expected 2 channels.*--allow-mono"),
    ]:
        assert main(["encode", str(audio / "cat.wav"), str(tmp / name), *out]) == 1
        err = capsys.readouterr().err
        assert name in err and re.search(message, err), err
    assert not (tmp / "codes.txt").exists()
    (tmp / "m.tsv").write_text(f"{audio}\ncat.wav\t51234\nmissing.wav\t100\n")
    assert main(["encode", str(tmp / "m.tsv"), *out]) == 1
    assert "m.tsv:3" in capsys.readouterr().err
    # --skip-bad reports them and encodes the rest; --allow-mono duplicates a mono file
    bad = [str(tmp / n) for n in ("corrupt.wav", "text.wav", "empty.wav")]
    assert (
        main(["encode", str(audio / "cat.wav"), str(tmp / "mono.wav"), *bad, "--skip-bad", "--allow-mono", *out]) == 0
    )
    records = read_code_file(tmp / "codes.txt")
    assert [r["audio"] for r in records] == ["cat", "mono"] and records[1]["unitA"] == records[1]["unitB"]


def test_model_errors_name_the_problem(setup, capsys):
    tmp, audio, model, _ = setup
    out = ["-o", str(tmp / "codes.txt")]
    assert main(["encode", str(audio), *out, *model, "--layer", "7"]) == 1
    assert "layer must be in 1..3" in capsys.readouterr().err
    assert main(["encode", str(audio), *out, "--km", model[3]]) == 1  # hubert features without --hubert
    assert "--hubert" in capsys.readouterr().err
    assert main(["encode", str(audio), *out, "--km", model[3], "--feature-type", "logmel"]) == 1
    assert "96 dims but the features have 80" in capsys.readouterr().err


def test_streaming_keeps_the_frame_grid(setup):
    tmp, audio, model, (ch1, _) = setup
    assert (
        main(
            [
                "encode",
                str(audio / "cat.wav"),
                "-o",
                str(tmp / "s.txt"),
                *model,
                "--streaming",
                "1",
                "--left-context",
                "0.4",
            ]
        )
        == 0
    )
    record = read_code_file(tmp / "s.txt")[0]
    assert len(record["unitA"].split()) == len(record["unitB"].split()) == len(ch1.split()) == 159
    same = sum(a == b for a, b in zip(record["unitA"].split(), ch1.split()))
    assert 0.5 * 159 < same < 159  # close to the exact units, not equal (per-window statistics)


def test_channel_id_writes_one_channel_as_the_original_quantiser(setup, capsys):
    tmp, audio, model, (ch1, ch2) = setup
    assert main(["encode", str(audio), "-o", str(tmp / "u-channel2"), "--channel_id", "2", *model]) == 0
    assert (tmp / "u-channel2").read_text().splitlines() == [f"cat-channel2|{ch2}", f"swapped-channel2|{ch1}"]
    assert main(["encode", str(audio), "-o", str(tmp / "u1"), "--channel-id", "1", "--hide-fname", *model]) == 0
    assert (tmp / "u1").read_text().splitlines() == [ch1, ch2]
    argv = ["encode", str(audio), "-o", str(tmp / "x"), "--channel_id", "1", "--per-channel-dir", str(tmp), *model]
    assert main(argv) == 1
    assert "--channel_id writes one channel's lines" in capsys.readouterr().err
