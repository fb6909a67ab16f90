"""Model file resolution: flags > cache (converted, then downloaded) > bundled demo; the missing-model message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dgslm.errors import DgslmError
from dgslm.models.released import BASE_URL, MODELS
from dgslm.models.resolve import CONVERTED, MARKERS, resolve_model_paths

REPO = Path(__file__).resolve().parents[2]


def touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def downloaded(cache: Path, models=MODELS) -> None:
    """Fake released files (names only matter here)."""
    for name in models:
        for file in MODELS[name].files.values():
            touch(cache / MODELS[name].folder / file)


def converted(root: Path, layer: int = 9) -> None:
    for model, files in MARKERS.items():
        for file in files:
            touch(root / model / file, json.dumps({"layer": layer}) if file == "config.json" else "")


def test_cache_downloaded_files(tmp_path):
    downloaded(tmp_path)
    paths = resolve_model_paths(cache=tmp_path, demo=tmp_path / "no-demo")
    assert paths.hubert == tmp_path / "hubert" / "hubert_fisher.pt"
    assert paths.kmeans == tmp_path / "hubert" / "hubert_fisher_km_500.bin"
    assert paths.layer == 12
    assert paths.speech_dlm == tmp_path / "speech_dlm" / "speech_dlm_base.pt"
    assert paths.speech_dlm_data == tmp_path / "speech_dlm"
    assert (paths.vocoder, paths.vocoder_cfg) == (
        tmp_path / "hifigan" / "hifigan_vocoder",
        tmp_path / "hifigan" / "config.json",
    )


def test_order_flags_then_converted_cache_then_downloaded_then_demo(tmp_path):
    cache, demo = tmp_path / "cache", tmp_path / "demo"
    converted(demo, layer=5)
    paths = resolve_model_paths(cache=cache, demo=demo)
    assert paths.hubert == demo / "hubert" and paths.kmeans == demo / "hubert" / "kmeans.safetensors"
    assert paths.layer == 5 and paths.speech_dlm_data is None
    assert set(paths.sources.values()) == {f"demo {demo / m}" for m in MARKERS}

    downloaded(cache)
    assert resolve_model_paths(cache=cache, demo=demo).speech_dlm == cache / "speech_dlm" / "speech_dlm_base.pt"

    converted(cache / CONVERTED, layer=7)
    paths = resolve_model_paths(cache=cache, demo=demo)
    assert (paths.hubert, paths.speech_dlm, paths.vocoder) == tuple(cache / CONVERTED / m for m in MARKERS)
    assert paths.layer == 7 and paths.vocoder_cfg == cache / CONVERTED / "hifigan" / "config.json"
    assert resolve_model_paths(cache=cache, demo=demo, layer=3).layer == 3

    ckpt = touch(tmp_path / "mine" / "lm.pt")
    touch(tmp_path / "mine" / "dict.unitA.txt")
    paths = resolve_model_paths(speech_dlm=ckpt, cache=cache, demo=demo)
    assert paths.speech_dlm == ckpt and paths.speech_dlm_data == ckpt.parent  # default: the checkpoint's folder
    assert paths.hubert == cache / CONVERTED / "hubert"  # the other models still come from the cache
    assert paths.sources["speech_dlm"] == "flags"


def test_flag_defaults_and_checks(tmp_path):
    downloaded(tmp_path / "cache")
    voc = touch(tmp_path / "v" / "g_00100000")
    with pytest.raises(DgslmError, match="--vocoder-cfg"):
        resolve_model_paths(vocoder=voc, cache=tmp_path / "cache")
    cfg = touch(tmp_path / "v" / "config.json")
    assert resolve_model_paths(vocoder=voc, cache=tmp_path / "cache").vocoder_cfg == cfg
    with pytest.raises(DgslmError, match="--hubert needs --km"):
        resolve_model_paths(hubert=voc, cache=tmp_path / "cache")
    with pytest.raises(DgslmError, match="--km needs --hubert"):
        resolve_model_paths(km=voc, cache=tmp_path / "cache")
    with pytest.raises(DgslmError, match="no dict"):
        resolve_model_paths(speech_dlm=voc, cache=tmp_path / "cache")
    with pytest.raises(DgslmError, match=r"nope\.pt: no such file or folder \(given by --speech-dlm\)"):
        resolve_model_paths(speech_dlm=tmp_path / "nope.pt", cache=tmp_path / "cache")


def test_missing_message_says_how_to_get_each_model(tmp_path):
    downloaded(tmp_path, ["hubert"])
    with pytest.raises(DgslmError) as info:
        resolve_model_paths(cache=tmp_path, demo=tmp_path / "no-demo")
    message = str(info.value)
    assert "\n" not in message
    assert "`dgslm download --models speech_dlm,hifigan`" in message
    assert f"{BASE_URL}speech_dlm/speech_dlm_base.pt" in message and f"{BASE_URL}hifigan/config.json" in message
    assert f"-> {tmp_path / 'speech_dlm'}/" in message and "--vocoder CKPT --vocoder-cfg CONFIG" in message
    assert "HuBERT" not in message


def test_only_the_models_asked_for(tmp_path):
    """`generate --units` asks for the SpeechDLM and vocoder only: no HuBERT fields, none reported missing."""
    downloaded(tmp_path, ["speech_dlm"])
    with pytest.raises(DgslmError) as info:
        resolve_model_paths(cache=tmp_path, models=("speech_dlm", "hifigan"), no_demo=True)
    assert "model files not found: unit HiFi-GAN vocoder." in str(info.value)
    assert "HuBERT" not in str(info.value) and "hubert" not in str(info.value)
    downloaded(tmp_path, ["hifigan"])
    paths = resolve_model_paths(cache=tmp_path, models=("speech_dlm", "hifigan"), hubert=tmp_path / "ignored")
    assert (paths.hubert, paths.kmeans, paths.layer) == (None, None, None)
    assert set(paths.sources) == {"speech_dlm", "hifigan"}
    with pytest.raises(ValueError, match="models must be"):
        resolve_model_paths(cache=tmp_path, models=("hubert",))


def test_no_demo_flag_and_environment(tmp_path, monkeypatch):
    demo = tmp_path / "demo"
    converted(demo)
    assert resolve_model_paths(cache=tmp_path / "cache", demo=demo).sources["hifigan"] == f"demo {demo / 'hifigan'}"
    with pytest.raises(DgslmError, match="model files not found: HuBERT"):
        resolve_model_paths(cache=tmp_path / "cache", demo=demo, no_demo=True)
    monkeypatch.setenv("DGSLM_NO_DEMO", "1")
    with pytest.raises(DgslmError, match="model files not found: HuBERT"):
        resolve_model_paths(cache=tmp_path / "cache", demo=demo)
    monkeypatch.setenv("DGSLM_NO_DEMO", "0")
    assert resolve_model_paths(cache=tmp_path / "cache", demo=demo).sources["speech_dlm"].startswith("demo ")


@pytest.mark.parametrize("no_demo", ["flag", "environment"])
def test_generate_reports_missing_models_before_importing_torch(tmp_path, reference, no_demo):
    """The CLI resolves the files first: one line, exit 1, torch never imported (so it answers at once).
    With the demo turned off this holds even where the bundled demo exists."""
    prompt, out_wav = str(reference / "audio" / "stereo_test.wav"), str(tmp_path / "o.wav")
    flags = ["--no-demo"] if no_demo == "flag" else []
    code = (
        "import sys\n"
        "from dgslm.cli.main import main\n"
        f"rc = main(['generate', {prompt!r}, '-o', {out_wav!r}, *{flags!r}])\n"
        "print(rc, 'torch' in sys.modules)\n"
    )
    env = {**os.environ, "DGSLM_HOME": str(tmp_path / "home")}
    env.pop("DGSLM_NO_DEMO", None)
    if no_demo == "environment":
        env["DGSLM_NO_DEMO"] = "1"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    rc, torch_imported = out.stdout.split()
    assert (rc, torch_imported) == ("1", "False")
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dgslm generate: error: model files not found")
    assert "dgslm download" in lines[0] and str(tmp_path / "home") in lines[0]
    assert not (tmp_path / "o.wav").exists()
