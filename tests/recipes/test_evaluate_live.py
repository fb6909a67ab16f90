"""recipes/evaluate_live.py: the engine's units as ``dgslm duplex`` makes them, and the recipe
end to end on two short held-out dialogues with the bundled demo."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
from commands import run_ok

from dgslm.audio import load_audio, write_wav
from dgslm.cli.main import main
from dgslm.units.codes import read_code_file

RECIPES = Path(__file__).parents[2] / "recipes"


def load_recipe():
    sys.path.insert(0, str(RECIPES))  # evaluate_live imports evaluate_demo, as when run as a script
    try:
        spec = importlib.util.spec_from_file_location("evaluate_live", RECIPES / "evaluate_live.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(RECIPES))


@pytest.fixture(scope="module")
def heldout(tmp_path_factory) -> Path:
    """Two synthetic dialogues of 10-12 s and their units (the demo's k-means)."""
    folder = tmp_path_factory.mktemp("live")
    assert main(["synth-corpus", "--out", str(folder / "heldout"), "--hours", "0.006", "--seed", "1",
                 "--min-dialogue-seconds", "10", "--max-dialogue-seconds", "12", "--workers", "1"]) == 0  # fmt: skip
    return folder


def test_engine_units_are_those_of_dgslm_duplex(heldout, tmp_path):
    """The recipe drives the engine without its vocoder: the same units as ``dgslm duplex``."""
    from dgslm.live.session import DuplexSession
    from dgslm.lm.generate import GenerationConfig

    wav = sorted((heldout / "heldout" / "wav").glob("*.wav"))[0]
    audio, _ = load_audio(wav)
    write_wav(tmp_path / "person.wav", audio[: 16000 * 3, 0], 16000)
    assert main(["duplex", str(tmp_path / "person.wav"), "-o", str(tmp_path / "s.wav"), "--seed", "7",
                 "--context-window", "64", "--save-units", str(tmp_path / "s.code")]) == 0  # fmt: skip
    (record,) = read_code_file(tmp_path / "s.code")
    session = DuplexSession.from_pretrained(GenerationConfig(context_window=64), seed=7, device="cpu")
    person, model = load_recipe().engine_units(session, audio[: 16000 * 3, 0])
    assert " ".join(map(str, person)) == record["unitA"]
    assert " ".join(map(str, model)) == record["unitB"]
    assert len(model) == 150 - session.units.lookahead - 1  # the last model unit has no person unit yet


@pytest.mark.slow
def test_recipe_reports_the_full_model_and_its_deaf_control(heldout):
    out = heldout / "out"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    args = [sys.executable, str(RECIPES / "evaluate_live.py"), out, "--corpus", heldout / "heldout",
            "--deaf", "--bootstrap", "50", "--context-window", "128"]  # fmt: skip
    printed = run_ok([str(a) for a in args], env=env).stdout
    results = json.loads((out / "results.json").read_text())
    records = list(read_code_file(out / "heldout.code"))
    assert len(records) == 2
    stats = results["statistics"]
    assert set(stats) == {"corpus units", "full", "full, deaf", "corpus partner +100 ms"}
    # the corpus partner 100 ms late (the engine's latency alone): the same IPUs, moved
    late = stats["corpus partner +100 ms"]
    assert late["ipu"]["count"] == stats["corpus units"]["ipu"]["count"]
    assert late["speech_ratio"][1] == pytest.approx(stats["corpus units"]["speech_ratio"][1], abs=0.01)
    minutes = sum(len(r["unitA"].split()) for r in records) / 50 / 60
    for row in stats.values():  # every session spans its corpus dialogue
        assert row["minutes"] == pytest.approx(minutes, abs=1e-3)
    assert results["person_unit_agreement"]["full"] > 0.95  # streaming units of the person = offline
    corpus = results["full_duplex"]["corpus units"]
    assert corpus["pause_takeover_rate"] in (0.0, None)  # the corpus partner never speaks in a pause
    for name in ("full", "full, deaf"):
        errors = results["per_minute_errors"][name]
        assert results["worst_error"][name] == pytest.approx(max(abs(v) for v in errors.values()))
        for lo, hi in results["intervals"][name].values():
            assert lo <= hi
    assert "pause takeover" in printed and (out / "results.md").read_text().strip() in printed
    # the sessions are cached: a second run reads them back and reports the same
    before = (out / "results.json").read_text()
    cached = sorted((out / "full.sessions").glob("*.json"))
    assert [p.stem for p in cached] == [r["audio"] for r in records]
    run_ok([str(a) for a in args], env=env)
    assert (out / "results.json").read_text() == before
    for path, record in zip(cached, records):
        session = json.loads(path.read_text())
        assert session["latency_frames"] == 5  # the demo engine's 100 ms
        frames = -(-len(load_audio(heldout / "heldout" / "wav" / f"{record['audio']}.wav")[0]) // 320)
        assert len(session["model"]) == frames - 3  # look-ahead 2, + 1 unpaired
    deaf = [json.loads(p.read_text())["key"][2] for p in sorted((out / "full_deaf.sessions").glob("*.json"))]
    assert [Path(k).stem for k in deaf] == [r["audio"] for r in records[1:] + records[:1]]  # another's person
