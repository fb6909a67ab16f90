"""Damaged inputs and bad flag values end in one-line errors, never in a traceback."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from hostile import assert_refused, run_dgslm

from dgslm.cli.main import main
from dgslm.units.indexed_dataset import IndexedDataset


def test_out_of_range_token_in_bin_file(reference, tmp_path):
    data = tmp_path / "data-bin"
    shutil.copytree(reference / "speechdlm" / "data-bin", data)
    prefix = data / "valid.unitB"
    dtype = IndexedDataset(prefix).dtype
    tokens = np.fromfile(f"{prefix}.bin", dtype=dtype)
    tokens[len(tokens) // 2] = np.iinfo(dtype).max
    tokens.tofile(f"{prefix}.bin")
    checkpoint = reference / "speechdlm" / "checkpoint" / "speech_dlm_small.pt"
    done = run_dgslm("validate", str(data), "--path", str(checkpoint), "--device", "cpu", timeout=300)
    assert_refused(done, f"{prefix}.bin", f"token {np.iinfo(dtype).max} is outside")


@pytest.mark.parametrize("flag, value", [("--seconds", "nan"), ("--seconds", "inf"), ("--prompt-seconds", "nan")])
def test_non_finite_seconds(reference, tmp_path, capsys, flag, value):
    codes = tmp_path / "codes.txt"
    codes.write_text("{'audio': 'a', 'unitA': '1 2 3', 'unitB': '4 5 6'}\n")
    rc = main(["generate", "--units", str(codes), "-o", str(tmp_path / "o.wav"), flag, value])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err == f"dgslm generate: error: {flag} must be a finite number, not {float(value)!r}"


def test_line_break_in_audio_name_is_refused_for_per_channel_files(reference, tmp_path, capsys):
    audio = tmp_path / "in"
    audio.mkdir()
    evil = audio / "a\nb-channel1|7 7 7.wav"
    shutil.copy(reference / "audio" / "stereo_test.wav", evil)
    km = reference / "kmeans" / "km50.bin"
    args = ["encode", str(audio), "-o", str(tmp_path / "codes.txt"), "--per-channel-dir", str(tmp_path / "pc"),
            "--hubert", str(reference / "hubert" / "hubert_small.pt"), "--km", str(km), "--layer", "3", "--device", "cpu"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "line break" in err and "a b-channel1" in err
    assert not (tmp_path / "pc").exists() and not (tmp_path / "codes.txt").exists()


def test_nothing_in_this_suite_left_a_traceback():
    """The child commands above are checked by assert_refused; this checks the helper itself
    catches a traceback (a test that cannot fail would prove nothing)."""
    fake = subprocess.CompletedProcess([], 1, "", "Traceback (most recent call last):\nValueError: x\n")
    with pytest.raises(AssertionError):
        assert_refused(fake, "x")
