"""`dgslm resynthesize`: a stereo recording -> units -> audio, nothing generated."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf

from dgslm.cli.main import main
from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.pipeline.dialogue import DialoguePipeline
from dgslm.units.codes import read_code_file
from tests.cli.test_cli_generate import HOP, model_flags

PCM_STEP = 1 / 32768  # what writing 16-bit PCM may change


@pytest.fixture
def demo_only(tmp_path, monkeypatch):
    """The model resolution finds the bundled demo: an empty cache, the fallback on."""
    monkeypatch.setenv("DGSLM_HOME", str(tmp_path / "empty-home"))
    monkeypatch.delenv("DGSLM_NO_DEMO", raising=False)


@pytest.fixture(scope="module")
def dialogue(tmp_path_factory):
    """A 7.9 s synthetic dialogue (channel 2 speaks 0.6-3.4 s, channel 1 3.8-7.4 s) and its timing."""
    out = tmp_path_factory.mktemp("corpus")
    argv = ["synth-corpus", "--out", out, "--hours", 0.002, "--seed", 2, "--min-dialogue-seconds", 6,
            "--max-dialogue-seconds", 8, "--workers", 1]  # fmt: skip
    assert main(list(map(str, argv))) == 0
    timing = json.loads((out / "timing" / "dialogue_000000.json").read_text())
    assert {ipu["channel"] for ipu in timing["ipus"]} == {0, 1}
    return out / "wav" / "dialogue_000000.wav", timing


def frame_db(wave: np.ndarray) -> np.ndarray:
    """(frames, 2) level in dBFS of each 320-sample frame of a (samples, 2) wave."""
    frames = wave[: len(wave) // HOP * HOP].reshape(-1, HOP, 2)
    return 10 * np.log10((frames**2).mean(axis=1) + 1e-12)


def test_demo_resynthesis_is_encode_then_vocode(dialogue, demo_only, tmp_path):
    wav, timing = dialogue
    out, codes = tmp_path / "out.wav", tmp_path / "units.txt"
    assert main(["resynthesize", str(wav), "-o", str(out), "--save-units", str(codes)]) == 0
    audio, rate = sf.read(out)
    source = sf.read(wav, dtype="float32")[0]
    frames = (len(source) - 400) // 320 + 1
    assert rate == 16000 and audio.shape == (frames * HOP, 2)

    pipe = DialoguePipeline.from_pretrained(device="cpu")  # the same resolution: the demo
    units = pipe.encode(source)
    (record,) = read_code_file(codes)
    assert record == {"audio": "out", **units}
    assert all(len(u.split()) == frames for u in units.values())
    np.testing.assert_allclose(audio, pipe.vocode(units), atol=PCM_STEP)

    level = frame_db(audio)
    centres = (np.arange(len(level)) + 0.5) / 50
    for channel in (0, 1):
        speaks = np.zeros(len(level), dtype=bool)
        for ipu in timing["ipus"]:
            if ipu["channel"] == channel:
                speaks |= (centres > ipu["start"]) & (centres < ipu["end"])
        assert speaks.sum() > 50
        speech, pause = level[speaks, channel].mean(), level[~speaks, channel].mean()
        assert speech > -50 and speech > pause + 6, (channel, speech, pause)


def test_original_checkpoints(reference, tmp_path):
    """The released models' formats (reference checkpoints with random weights, given by flag)."""
    wav = reference / "audio" / "stereo_test.wav"
    out, codes = tmp_path / "out.wav", tmp_path / "units.txt"
    assert main(["resynthesize", str(wav), "-o", str(out), "--save-units", str(codes), *model_flags(reference)]) == 0
    audio, rate = sf.read(out)
    assert rate == 16000 and audio.shape == (159 * HOP, 2)
    encoder = UnitEncoder.from_pretrained(
        reference / "hubert" / "hubert_small.pt", reference / "kmeans" / "km50.bin", 3, "cpu"
    )
    (record,) = read_code_file(codes)
    assert [record["unitA"], record["unitB"]] == encoder.encode(sf.read(wav, dtype="float32")[0])


@pytest.mark.parametrize(
    "make, message",
    [
        (None, r"bad\.wav: no such file$"),
        (lambda p: p.write_bytes(b""), r"bad\.wav: cannot read audio"),
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage"), r"bad\.wav: cannot read audio"),
        (lambda p: sf.write(p, np.zeros((0, 2)), 16000), r"bad\.wav: audio file is empty$"),
        (lambda p: sf.write(p, np.zeros(4000), 16000), r"bad\.wav: mono prompt: .*--allow-mono"),
        (lambda p: sf.write(p, np.zeros((4000, 3)), 16000), r"bad\.wav: the prompt has 3 channels"),
        (lambda p: sf.write(p, np.zeros((320, 2)), 16000), r"bad\.wav: prompt too short: 20\.0 ms"),
    ],
)  # fmt: skip
def test_bad_inputs_are_one_line_errors_and_write_nothing(reference, tmp_path, capsys, make, message):
    bad = tmp_path / "bad.wav"
    if make is not None:
        make(bad)
    out, codes = tmp_path / "out" / "o.wav", tmp_path / "u.txt"
    argv = ["resynthesize", str(bad), "-o", str(out), "--save-units", str(codes), *model_flags(reference)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dgslm resynthesize: error: ")
    assert re.search(message, err[-1]), err[-1]
    assert not out.parent.exists() and not codes.exists()


def test_allow_mono_puts_the_recording_on_both_channels(reference, tmp_path):
    mono, codes = tmp_path / "mono.flac", tmp_path / "u.txt"
    sf.write(mono, sf.read(reference / "audio" / "stereo_test.wav")[0][:8000, 0], 16000)
    argv = ["resynthesize", str(mono), "-o", str(tmp_path / "o.wav"), "--allow-mono", "--save-units", str(codes)]
    assert main([*argv, *model_flags(reference)]) == 0
    (record,) = read_code_file(codes)
    assert record["unitA"] == record["unitB"] and len(record["unitA"].split()) == 24
    assert sf.read(tmp_path / "o.wav")[0].shape == (24 * HOP, 2)
