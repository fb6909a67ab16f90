"""``dgslm encode`` and ``dgslm sample`` (beam search and sampling) under torchrun (2 CPU ranks,
gloo) give one process's outputs; an interrupted encode resumes rank by rank."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest
import soundfile as sf

from dgslm.cli.main import main
from dgslm.encoder.encode import EncodeOptions, journal_fingerprint
from dgslm.encoder.unit_encoder import UnitEncoder
from tests.commands import run_ok

pytestmark = pytest.mark.slow

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "dgslm"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def torchrun(*argv: str):
    return run_ok([*TORCHRUN, *argv], env=ENV, timeout=300, retry_on_transport_error=True)


@pytest.fixture()
def audio(reference, tmp_path):
    """Four stereo files: the reference recording, its channels swapped, and two cuts of it."""
    folder = tmp_path / "audio"
    folder.mkdir()
    stereo, sr = sf.read(reference / "audio" / "stereo_test.wav", dtype="int16")
    for name, wave in {"a": stereo, "b": stereo[:, ::-1], "c": stereo[:20000], "d": stereo[8000:]}.items():
        sf.write(folder / f"{name}.wav", wave, sr)
    return folder


def encode_args(reference, audio, out):
    model = ["--hubert", str(reference / "hubert/hubert_small.pt"), "--km", str(reference / "kmeans/km50.bin")]
    return ["encode", str(audio), *model, "--layer", "3", "--device", "cpu", "-o", str(out / "codes.txt"),
            "--per-channel-dir", str(out / "raw")]  # fmt: skip


OUTPUTS = ("codes.txt", "raw/codes.unitA", "raw/codes.unitB")


def encoder_of(reference) -> UnitEncoder:
    """The encoder that :func:`encode_args` describes (for the journal's fingerprint)."""
    return UnitEncoder.from_pretrained(reference / "hubert/hubert_small.pt", reference / "kmeans/km50.bin", 3, "cpu")


def mark(line: str) -> str:
    """The line with unit 49 put first in every channel (a code line or a ``name|units`` line)."""
    if "|" in line:
        return line.replace("|", "|49 ")
    return line.replace("'unitA': '", "'unitA': '49 ").replace("'unitB': '", "'unitB': '49 ")


def test_encode_on_two_ranks_equals_one_process_and_resumes(reference, audio, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(encode_args(reference, audio, one)) == 0
    expected = {name: (one / name).read_text() for name in OUTPUTS}
    assert len(expected["codes.txt"].splitlines()) == 4

    torchrun("--log-level", "WARNING", *encode_args(reference, audio, two))
    assert {name: (two / name).read_text() for name in OUTPUTS} == expected
    assert sorted(p.name for p in two.rglob("*")) == ["codes.txt", "codes.unitA", "codes.unitB", "raw"]

    # a crash: rank 1 (c, d) had finished its shard, rank 0 (a, b) had journalled a only. The
    # planted records carry a marker unit, so that the merged output shows they were reused.
    shutil.rmtree(two)
    (two / "raw").mkdir(parents=True)
    lines = {name: text.splitlines(keepends=True) for name, text in expected.items()}
    marked = {name: [mark(line) for line in lines[name]] for name in OUTPUTS}
    (two / "codes.rank1-of-2.txt").write_text("".join(marked["codes.txt"][2:]))
    for channel in ("unitA", "unitB"):
        (two / f"raw/codes.rank1-of-2.{channel}").write_text("".join(marked[f"raw/codes.{channel}"][2:]))
    record = {"audio": "a", "unitA": "49 " + lines["raw/codes.unitA"][0].split("|")[1].strip(),
              "unitB": "49 " + lines["raw/codes.unitB"][0].split("|")[1].strip()}  # fmt: skip
    header = {"fingerprint": journal_fingerprint(encoder_of(reference), EncodeOptions())}  # as the CLI's run
    (two / ".codes.rank0-of-2.txt.partial").write_text(json.dumps(header) + "\n" + json.dumps(record) + "\n")

    done = torchrun("--log-level", "INFO", *encode_args(reference, audio, two))
    assert "rank 1: shard already encoded" in done.stderr and "1 already done" in done.stderr
    resumed = {name: (two / name).read_text().splitlines(keepends=True) for name in OUTPUTS}
    for name in OUTPUTS:  # a from the journal, b encoded now, c and d from rank 1's finished shard
        assert resumed[name] == [marked[name][0], lines[name][1], *marked[name][2:]], name
    assert sorted(p.name for p in two.rglob("*")) == ["codes.txt", "codes.unitA", "codes.unitB", "raw"]


def test_original_channel_lines_on_two_ranks(reference, audio, tmp_path):
    args = encode_args(reference, audio, tmp_path)[:-4]
    assert main([*args, "-o", str(tmp_path / "one-channel2"), "--channel_id", "2"]) == 0
    torchrun(*args, "-o", str(tmp_path / "two-channel2"), "--channel_id", "2")
    expected = (tmp_path / "one-channel2").read_text()
    assert expected.splitlines()[0].startswith("a-channel2|")
    assert (tmp_path / "two-channel2").read_text() == expected


@pytest.fixture()
def prompts(reference, tmp_path):
    """Five prompts of different lengths (valid lines of the reference data)."""
    raw = reference / "speechdlm/raw"
    pairs = zip((raw / "valid.unitA").read_text().splitlines()[:5], (raw / "valid.unitB").read_text().splitlines())
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"audio": f"p{i}", "unitA": a, "unitB": b}) + "\n"
                            for i, (a, b) in enumerate(pairs)))  # fmt: skip
    return path


def sample_args(reference, prompts, out, *extra):
    ckpt = reference / "speechdlm/checkpoint/speech_dlm_small.pt"
    return ["sample", "--in-file", str(prompts), "--ckpt", str(ckpt), "--out-file", str(out), "--max-len-b", "60",
            "--beam-size", "3", "--device", "cpu", *extra]  # fmt: skip


@pytest.mark.parametrize("mode", [["--beam-search"], ["--seed", "7", "--sampling-topk", "20"]], ids=["beam", "sampled"])
def test_sample_on_two_ranks_equals_one_process(reference, prompts, tmp_path, mode):
    # prompts cut to 40 units (15, 40, 40, 40, 40), two per batch: batches (p0, p1), (p2, p3),
    # (p4); rank 0 continues the first and the last, rank 1 the second, each batch sampled
    # from its own seed; the merge puts them back in input order
    args = ["--prefix-size", "40", "--batch-max-sentences", "2", *mode]
    assert main(sample_args(reference, prompts, tmp_path / "one.txt", *args)) == 0
    torchrun(*sample_args(reference, prompts, tmp_path / "two.txt", *args))
    expected = (tmp_path / "one.txt").read_text()
    assert [line.split("'")[3] for line in expected.splitlines()] == [f"p{i}-generated" for i in range(5)]
    assert (tmp_path / "two.txt").read_text() == expected
    assert sorted(p.name for p in tmp_path.glob("two*")) == ["two.txt"]
