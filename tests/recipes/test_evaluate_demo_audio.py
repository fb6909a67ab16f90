"""recipes/evaluate_demo_audio.py measures what `dgslm generate` does by default."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from dgslm.cli import generate, sample
from dgslm.cli.options import generation_config
from dgslm.lm.hub import SpeechDLM
from dgslm.models.resolve import DEMO_DIR
from dgslm.pipeline.defaults import DIALOGUE_DEFAULTS

RECIPES = Path(__file__).parents[2] / "recipes"
sys.path.insert(0, str(RECIPES))  # the recipe imports evaluate_demo beside it
spec = importlib.util.spec_from_file_location("evaluate_demo_audio", RECIPES / "evaluate_demo_audio.py")
recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe)


def parsed(command, *args: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(list(args))


def test_the_sample_flags_give_the_generation_config_of_generate_defaults():
    model = DEMO_DIR / "speech_dlm"
    flags = recipe.default_flags(model)
    assert flags == ["--beam-size", str(DIALOGUE_DEFAULTS["beam"]), "--temperature",
                     str(DIALOGUE_DEFAULTS["temperature"]), "--context-window", "512"]  # fmt: skip
    lm = SpeechDLM.from_pretrained(model)
    users = lm.resolve_window(generation_config(parsed(generate, "-o", "x.wav")))
    measured = generation_config(parsed(sample, "--in-file", "p", "--ckpt", "m", "--out-file", "o", *flags))
    assert users == measured


def test_error_row_counts_the_statistics_within_15_percent():
    stats = {e: {"per_minute": 10.0, "seconds_per_minute": 4.0} for e in recipe.EVENTS}
    ours = {**stats, "gap": {"per_minute": 12.0, "seconds_per_minute": 4.4}}
    ci = {f"{e}.{k}": [-0.05, 0.05] for e in recipe.EVENTS for k in ("per_minute", "seconds_per_minute")}
    row = recipe.error_row("defaults", ours, stats, ci)
    assert row.startswith("| defaults | +0% [-5%, +5%] |")
    assert "| +20% [-5%, +5%] | +10% [-5%, +5%] |" in row and row.endswith("| 7 / 8 | 20% |")
