"""``dgslm vocode`` writes the same stereo wavs as the original generate_stereo_waveform.py."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from dgslm.audio import resample
from dgslm.cli.main import main


def _vocode(reference, out, *extra):
    folder = reference / "vocoder"
    args = ["vocode", "--in-file", str(folder / "codes.txt"), "--vocoder", str(folder / "hifigan_vocoder")]
    return main(
        [*args, "--vocoder-cfg", str(folder / "config.json"), *(["--results-path", str(out)] if out else []), *extra]
    )


@pytest.mark.parametrize("mix", [False, True])
def test_stereo_wavs_match_reference(reference, tmp_path, mix):
    expected_dir = reference / "vocoder" / ("stereo_mix" if mix else "stereo")
    assert _vocode(reference, tmp_path, *(["--mix"] if mix else [])) == 0
    names = sorted(p.name for p in expected_dir.glob("*.wav"))
    assert names == ["1_pred.wav", "readme_example.wav"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # no temporary files left
    for name in names:
        ours, sr = sf.read(tmp_path / name, dtype="int16", always_2d=True)
        ref, ref_sr = sf.read(expected_dir / name, dtype="int16", always_2d=True)
        info = sf.info(tmp_path / name)
        assert sr == ref_sr == 16000 and info.subtype == "PCM_16"
        assert ours.shape == ref.shape == ((12800 if name == "1_pred.wav" else 4800), 1 if mix else 2)
        assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1, name


def test_default_results_path_is_cwd(reference, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _vocode(reference, None) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1_pred.wav", "readme_example.wav"]


def _bad_codes(tmp_path, line):
    path = tmp_path / "codes.txt"
    path.write_text("{'audio': 'a.wav', 'unitA': '1 2 3', 'unitB': '4 5 6'}\n\n" + line + "\n")
    return path


@pytest.mark.parametrize(
    "line, message",
    [
        ("{'unitA': '1 2 999', 'unitB': '4 5 6'}", "unit 999 is beyond the vocoder's table of 500 units"),
        ("{'unitA': '', 'unitB': '4 5 6'}", "no units to vocode (empty unit sequence)"),
        ("{'unitB': '4 5 6'}", "no channel 'unitA' in this line"),
    ],
)
def test_bad_code_line_names_file_and_line(reference, tmp_path, capsys, line, message):
    codes = _bad_codes(tmp_path, line)
    folder = reference / "vocoder"
    argv = ["vocode", "--in-file", str(codes), "--vocoder", str(folder / "hifigan_vocoder"),
            "--vocoder-cfg", str(folder / "config.json"), "--results-path", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"dgslm vocode: error: {codes}:3: {message}"


def test_bad_speaker_id(reference, tmp_path, capsys):
    assert _vocode(reference, tmp_path, "--channel2-spk", "8") == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.endswith("codes.txt:1: speaker id 8 is beyond the vocoder's 8 speakers")


def test_sample_rate_resamples(reference, tmp_path):
    assert _vocode(reference, tmp_path, "--mix", "--sample-rate", "8000") == 0
    ours, sr = sf.read(tmp_path / "readme_example.wav", dtype="float32")
    ref, _ = sf.read(reference / "vocoder" / "stereo_mix" / "readme_example.wav", dtype="float32")
    assert sr == 8000 and ours.shape == (2400,)
    np.testing.assert_allclose(ours, resample(ref, 16000, 8000), atol=2e-3)  # up to 16-bit rounding
