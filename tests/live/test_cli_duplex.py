"""``dgslm duplex`` end to end, and its one-line errors on bad input."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import soundfile as sf
from commands import run_ok

from dgslm.cli.main import main
from dgslm.units.codes import read_code_file

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def person(reference, tmp_path_factory):
    """2 s of speech then 2 s of silence at 22.05 kHz (resampled by the command), mono."""
    wave, rate = sf.read(reference / "audio" / "stereo_test.wav", dtype="float32")
    audio = np.concatenate([wave[: 2 * rate, 0], np.zeros(2 * rate, dtype=np.float32)])
    import soxr

    path = tmp_path_factory.mktemp("duplex") / "person.wav"
    sf.write(path, soxr.resample(audio, rate, 22050), 22050, subtype="FLOAT")
    return path, audio


def test_duplex_writes_the_session_as_heard_deterministically(person, tmp_path):
    path, audio = person
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.wav"
        cmd = [sys.executable, "-m", "dgslm", "duplex", str(path), "-o", str(out), "--json", "--seed", "3",
               "--user-channel", "1", "--save-units", str(tmp_path / f"{name}.txt")]  # fmt: skip
        done = run_ok(cmd)
        outputs.append((json.loads(done.stdout), sf.read(out, dtype="float32")))
    (stats, (session, rate)), (stats_b, (session_b, _)) = outputs
    assert rate == 16000 and session.shape == (len(audio) // 320 * 320, 2)
    assert np.array_equal(session, session_b)
    assert stats["frames"] == len(audio) // 320 == stats_b["frames"]
    assert stats["algorithmic_latency_ms"] == 100.0 and stats["late_frames"] >= 0
    assert {"compute_ms_p50", "compute_ms_p95", "compute_ms_max", "real_time_factor"} <= set(stats)
    assert np.abs(session[:, 1] - audio[: len(session)]).max() < 0.01  # the person, resampled there and back
    delay = round(stats["algorithmic_latency_ms"] / 20) * 320
    assert not session[:delay, 0].any()  # the model is heard one latency late
    assert np.abs(session[delay:, 0]).max() > 0.01
    (record,) = read_code_file(tmp_path / "a.txt")
    assert len(record["unitA"].split()) == len(record["unitB"].split()) > 150


def test_duplex_stereo_input_needs_a_channel(person, tmp_path, capsys):
    _, audio = person
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([audio[:8000], audio[:8000] * 0], axis=1), 16000)
    assert main(["duplex", str(stereo), "-o", str(tmp_path / "s.wav")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stereo file: choose the person's channel with --input-channel" in err[0]
    assert main(["duplex", str(stereo), "-o", str(tmp_path / "s.wav"), "--input-channel", "2"]) == 0
    session, _ = sf.read(tmp_path / "s.wav")
    assert session.shape == (8000, 2) and not session[:, 0].any()  # the silent channel was the person's


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: sf.write(p, np.zeros((0, 1), dtype=np.float32), 16000), "audio file is empty"),
        (lambda p: p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk"), "cannot read audio"),
        (lambda p: sf.write(p, np.zeros((800, 3), dtype=np.float32), 16000), "3 channels"),
        (lambda p: sf.write(p, np.zeros(800, dtype=np.float32), 16000), "--input-channel 2 but the file is mono"),
    ],
)
def test_duplex_bad_audio_is_a_one_line_error(tmp_path, capsys, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    extra = ["--input-channel", "2"] if "mono" in message else []
    assert main(["duplex", str(path), "-o", str(tmp_path / "out.wav"), *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(path) in err[0]
    assert not (tmp_path / "out.wav").exists()


def test_duplex_refuses_beam_search(tmp_path, capsys):
    path = tmp_path / "p.wav"
    sf.write(path, np.zeros(800, dtype=np.float32), 16000)
    assert main(["duplex", str(path), "-o", str(tmp_path / "o.wav"), "--beam-search"]) == 1
    assert "--beam-search cannot run live" in capsys.readouterr().err


@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
def test_duplex_with_smaller_decoding_weights(person, tmp_path, capsys, dtype):
    """``--dtype`` loads the SpeechDLM in bf16 or int8 (as ``dgslm generate``): the session runs,
    the model speaks, and the same seed gives the same session."""
    path, audio = person
    sessions = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.wav"
        assert main(["duplex", str(path), "-o", str(out), "--json", "--seed", "3", "--dtype", dtype]) == 0
        stats = json.loads(capsys.readouterr().out)
        assert stats["frames"] == len(audio) // 320
        sessions.append(sf.read(out, dtype="float32")[0])
    assert np.array_equal(*sessions)
    delay = round(stats["algorithmic_latency_ms"] / 20) * 320
    assert np.abs(sessions[0][delay:, 1]).max() > 0.01  # the model (channel 1: the person is on 0)
