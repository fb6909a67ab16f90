"""The error intervals of recipes/evaluate_demo.py: a paired bootstrap over held-out dialogues."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parents[2] / "recipes" / "evaluate_demo.py"
spec = importlib.util.spec_from_file_location("evaluate_demo", SCRIPT)
evaluate_demo = importlib.util.module_from_spec(spec)
spec.loader.exec_module(evaluate_demo)


def window(name: str, minutes: float, **events: tuple[int, float]) -> dict:
    """One ``dgslm evaluate --json`` dialogue entry: event -> (count, seconds)."""
    stats = {e: {"count": 0, "seconds_per_minute": 0.0} for e in evaluate_demo.EVENTS}
    for event, (count, seconds) in events.items():
        stats[event] = {"count": count, "seconds_per_minute": seconds / minutes}
    return {"name": name, "minutes": minutes, **stats}


def test_totals_group_windows_and_samples_by_held_out_dialogue():
    source = {"dialogue_000001_0": 0, "dialogue_000001_300": 0, "dialogue_000002_0": 1}
    rows = [
        window("dialogue_000001_0_0", 0.1, ipu=(4, 3.0)),  # sample 0 of a window
        window("dialogue_000001_300_1", 0.1, gap=(1, 0.5)),
        window("full__dialogue_000002_0", 0.2, ipu=(2, 1.0)),  # a vocoded code file's record
    ]
    sums = evaluate_demo.totals(rows, source, 2)
    assert sums.shape == (2, 9)
    np.testing.assert_allclose(sums[0, :5], [0.2, 4, 3.0, 0, 0])
    np.testing.assert_allclose(sums[0, 5:7], [1, 0.5])
    np.testing.assert_allclose(sums[1, :3], [0.2, 2, 1.0])


def test_bootstrap_interval_brackets_the_error_and_widens_with_fewer_dialogues():
    rng = np.random.default_rng(0)

    def corpus(groups: int, scale: float) -> np.ndarray:
        minutes = rng.uniform(0.5, 1.5, size=(groups, 1))
        return np.hstack([minutes, scale * rng.poisson(20 * minutes, size=(groups, 8))])

    reference = corpus(200, 1.0)
    same = evaluate_demo.bootstrap_intervals(reference, reference)
    assert all(lo == pytest.approx(0) and hi == pytest.approx(0) for lo, hi in same.values())

    doubled = reference.copy()
    doubled[:, 1:] *= 2
    assert all(
        lo == pytest.approx(1) and hi == pytest.approx(1)
        for lo, hi in evaluate_demo.bootstrap_intervals(doubled, reference).values()
    )

    other = corpus(200, 1.2)  # 20% more of everything, independent noise
    wide = evaluate_demo.bootstrap_intervals(other[:10], reference[:10])
    narrow = evaluate_demo.bootstrap_intervals(other, reference)
    rates = lambda sums: sums[:, 1:].sum(0) / sums[:, 0].sum()  # noqa: E731
    estimates = rates(other) / rates(reference) - 1
    covered = 0
    for estimate, (key, (lo, hi)) in zip(estimates, narrow.items()):
        assert lo < estimate < hi and hi - lo < wide[key][1] - wide[key][0]
        covered += lo < 0.2 < hi
    assert covered >= 6  # a 90% interval: most of the 8 hold the true +20%
