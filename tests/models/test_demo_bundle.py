"""The bundled demo (dgslm/assets/demo/): small, labelled, and `dgslm generate` runs on it offline."""

from __future__ import annotations

import json

import soundfile as sf

from dgslm.cli.main import main
from dgslm.models.resolve import DEMO_DIR, resolve_model_paths
from dgslm.units.codes import read_code_file

MAX_BYTES = 25 * 1024 * 1024


def test_bundle_is_small_and_says_what_it_is():
    files = [p for p in DEMO_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= MAX_BYTES
    assert not [p for p in files if p.suffix in (".pt", ".bin", ".pkl")], "weights must be safetensors"
    info = json.loads((DEMO_DIR / "bundle.json").read_text())
    assert info["demo"] is True and info["feature_type"] == "logmel"
    readme = (DEMO_DIR / "README.txt").read_text()
    assert "synthetic" in readme and "NOT a real dialogue model" in readme


def test_demo_is_the_fallback_when_nothing_else_is_found(tmp_path):
    paths = resolve_model_paths(cache=tmp_path / "empty-cache")
    assert paths.sources == {m: f"demo {DEMO_DIR / m}" for m in ("hubert", "speech_dlm", "hifigan")}


def test_generate_continues_a_stereo_prompt_with_the_demo(reference, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("DGSLM_HOME", str(tmp_path / "empty-cache"))  # nothing cached, nothing downloaded
    out = tmp_path / "out.wav"
    prompt = reference / "audio" / "stereo_test.wav"  # 3.2 s, two different channels
    code = main(["generate", str(prompt), "-o", str(out), "--prompt-seconds", "2", "--seconds", "2",
                 "--device", "cpu", "--save-units", str(tmp_path / "units.txt")])  # fmt: skip
    assert code == 0
    assert any("DEMO" in r.getMessage() and "synthetic" in r.getMessage() for r in caplog.records)
    audio, rate = sf.read(out)
    # 2 s prompt -> (32000 - 400) // 320 + 1 = 99 frames; + 100 generated frames; 320 samples each
    assert rate == 16000 and audio.shape == ((99 + 100) * 320, 2)
    assert audio[99 * 320 :].std(axis=0).min() > 0  # both channels of the continuation carry signal
    (record,) = read_code_file(tmp_path / "units.txt")
    assert [len(record[c].split()) for c in ("unitA", "unitB")] == [199, 199]
