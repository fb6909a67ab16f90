"""recipes/build_demo.sh and recipes/evaluate_demo.sh end to end at toy sizes: every dgslm step
runs, the bundle generates, and the turn-taking check reports on the full model and its ablation."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest
import soundfile as sf
from commands import run_ok

from dgslm.cli.main import main
from dgslm.units.codes import read_code_file

pytestmark = pytest.mark.slow  # end to end: run the fast set with -m "not slow"

RECIPES = Path(__file__).parents[2] / "recipes"
TOY = {
    "HOURS": "0.1", "UNITS": "20", "KM_PERCENT": "0.5", "THREADS": "1", "DEVICE": "cpu",
    "LM_LAYERS": "2", "LM_CROSS_LAYERS": "1", "LM_DIM": "32", "LM_FFN": "64", "LM_HEADS": "2",
    "LM_UPDATES": "4", "LM_WARMUP": "2", "LM_SAVE_EVERY": "2", "LM_MAX_TOKENS": "1024",
    "VOC_STEPS": "4", "VOC_SAVE_EVERY": "2", "VOC_CHANNELS": "32", "VOC_BATCH": "2", "HELDOUT_HOURS": "0.03",
    "TUNING_HOURS": "0.02", "TEMPERATURES": "1.0 1.1", "LONG_SECONDS": "3", "LONG_WINDOW": "64",
    "LONG_TEMPERATURES": "1.0",
}  # fmt: skip


def run_recipe(script: str, *args) -> str:
    """Run a recipe script at the toy sizes with this interpreter's dgslm first on PATH."""
    env = {**os.environ, **TOY, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return run_ok(["bash", str(RECIPES / script), *map(str, args)], env=env).stdout


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("demo") / "work"
    run_recipe("build_demo.sh", work)
    return work


def test_recipe_builds_a_bundle_that_generates(work, tmp_path, monkeypatch):
    bundle = work / "bundle"
    info = json.loads((bundle / "bundle.json").read_text())
    assert info["demo"] is True and info["corpus"]["seed"] == 0
    assert json.loads((bundle / "hubert" / "config.json").read_text())["n_clusters"] == 20
    vocoder_cfg = json.loads((bundle / "hifigan" / "config.json").read_text())
    assert vocoder_cfg["peak_normalize"] is False  # the vocoder learns the corpus's level
    stage = {k: vocoder_cfg[k] for k in ("silence_unit", "silence_fade_ms", "output_gain_db")}
    assert stage == info["vocoder_output_stage"] and 0 <= stage["silence_unit"] < 20

    monkeypatch.setenv("DGSLM_HOME", str(tmp_path / "empty-cache"))
    prompt = next((work / "corpus" / "wav").glob("*.wav"))
    out = tmp_path / "out.wav"
    code = main(["generate", str(prompt), "-o", str(out), "--prompt-seconds", "1", "--seconds", "1",
                 "--hubert", str(bundle / "hubert"), "--speech-dlm", str(bundle / "speech_dlm"),
                 "--vocoder", str(bundle / "hifigan"), "--device", "cpu"])  # fmt: skip
    assert code == 0
    audio, rate = sf.read(out)
    assert rate == 16000 and audio.shape[1] == 2 and len(audio) == (49 + 50) * 320


def test_turn_taking_check_compares_both_models_with_the_corpus(work, tmp_path):
    stdout = run_recipe("evaluate_demo.sh", work, "--prompt-seconds", 2, "--seconds", 2, "--max-prompts", 3,
                        "--samples", 2, "--timeline", tmp_path / "timeline.png")  # fmt: skip
    results = json.loads((work / "turn_taking" / "results.json").read_text())
    assert results["settings"]["prompts"] == 3 and results["settings"]["split"] == "heldout"
    digest = lambda folder: {hashlib.md5(p.read_bytes()).hexdigest() for p in (folder / "wav").glob("*.wav")}  # noqa: E731
    heldout = digest(work / "heldout")
    assert heldout and heldout.isdisjoint(digest(work / "corpus"))  # new dialogues, not the training ones
    assert len(read_code_file(work / "units" / "heldout.code")) == len(heldout)
    worst = {t: max(json.loads((work / f"tuning_T{t}" / "results.json").read_text())["errors_vs_corpus_units"]["full"].values())
             for t in ("1.0", "1.1")}  # fmt: skip
    assert results["settings"]["temperature"] == float(min(worst, key=worst.get))  # chosen on the tuning dialogues
    for name in ("full", "no-cross"):  # each prompt continued twice, 100 new frames each time
        records = [line for line in (work / "turn_taking" / f"{name}.code").read_text().splitlines() if line]
        assert len(records) == 6
        errors = results["errors_vs_corpus_units"][name]
        assert len(errors) == 8 and all(e >= 0 for e in errors.values())
        intervals = results["error_intervals_90"][name]
        assert intervals.keys() == errors.keys() and all(lo <= hi for lo, hi in intervals.values())
        assert f"{name}: " in stdout and "per-minute statistics within 15% of the corpus" in stdout
    assert results["errors_vs_corpus_units"]["corpus units"] == dict.fromkeys(errors, 0.0)
    assert (tmp_path / "timeline.png").stat().st_size > 0
    assert "P(speech at the next frame | silent for k frames)" in stdout
    long = json.loads((work / "turn_taking_3s" / "results.json").read_text())  # past a 64-frame window
    assert long["settings"]["context_window"] == 64 and long["settings"]["seconds"] == 3
    for name in ("full", "no-cross"):  # 4 s + 3 s = 350 units (the toy model draws a few <s>, dropped)
        lengths = [len(r[c].split()) for r in read_code_file(work / "turn_taking_3s" / f"{name}.generated.code")
                   for c in ("unitA", "unitB")]  # fmt: skip
        assert len(lengths) == 12 and max(lengths) == 350 and min(lengths) > 200
