"""recipes/silence_hazard.py: run lengths and the hazard table against known sequences."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

SCRIPT = Path(__file__).parents[2] / "recipes" / "silence_hazard.py"
spec = importlib.util.spec_from_file_location("silence_hazard", SCRIPT)
hazard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hazard)


def test_run_lengths_count_frames_since_the_value_changed():
    values = np.array([[5, 5, 5, 6, 6, 5], [1, 1, 1, 1, 2, 2]])
    assert hazard.run_lengths(values).tolist() == [[1, 2, 3, 1, 2, 1], [1, 2, 3, 4, 1, 2]]


def test_hazard_table_rates_per_silence_length():
    # channel A: 3 silent frames then speech, twice; channel B always silent (silence unit 0)
    a = [0, 0, 0, 7, 0, 0, 0, 7]
    tokens = torch.tensor([[a, [0] * 8]])
    perfect = np.zeros((1, 2, 8))
    perfect[0, 0, [2, 6]] = 1.0  # speech follows exactly after 3 silent frames
    table = hazard.hazard_table(tokens, 0, {"perfect": perfect, "flat": np.full((1, 2, 8), 0.25)})
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|")[:2]): line for line in table.splitlines()[2:]}
    # own silence of channel A for 3 frames: both times speech next; B is never followed by speech
    assert rows[("3", "own")].split("|")[3:6] == [" 3 ", " 0.667 ", " 0.667 "]
    assert rows[("1", "own")].split("|")[3:7] == [" 3 ", " 0.000 ", " 0.000 ", " 0.250 "]
    # mutual silence for 3 frames (B is silent throughout): frames 2 and 6 of both channels,
    # followed by speech in A only
    assert rows[("3", "mutual")].split("|")[3:6] == [" 4 ", " 0.500 ", " 0.500 "]
