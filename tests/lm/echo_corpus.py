"""A generated two-channel unit corpus for training tests: channel B echoes channel A's runs.

Channel A is random runs (1..4 frames) of units 0..3, consecutive runs differing; channel B
is channel A delayed by ``delay`` frames, so B's next run unit is always visible in A's past.
Written as a binarised data folder (dict.unitA/B.txt, {train,valid}.unit{A,B}.{bin,idx}).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dgslm.units.dictionary import Dictionary
from dgslm.units.indexed_dataset import write_indexed_dataset

UNITS = 4


def _line(rng: np.random.Generator, length: int) -> list[int]:
    units: list[int] = []
    previous = -1
    while len(units) < length:
        unit = int(rng.integers(UNITS - 1))
        unit = unit if unit < previous or previous < 0 else unit + 1  # differs from previous
        units += [unit] * int(rng.integers(1, 5))
        previous = unit
    return units[:length]


def make_echo_corpus(folder: Path, lines: dict[str, int], length: int = 120, delay: int = 2, seed: int = 0) -> Path:
    """Write the corpus to ``folder``; ``lines`` maps split name to its number of lines."""
    folder.mkdir(parents=True, exist_ok=True)
    dictionary = Dictionary.from_counts({str(u): 100 - u for u in range(UNITS)})
    for channel in ("unitA", "unitB"):
        dictionary.save(folder / f"dict.{channel}.txt")
    rng = np.random.default_rng(seed)
    for split, count in lines.items():
        a_lines, b_lines = [], []
        for _ in range(count):
            a = _line(rng, length)
            b = [a[0]] * delay + a[:-delay]
            a_lines.append([dictionary.index(str(u)) for u in a] + [dictionary.eos()])
            b_lines.append([dictionary.index(str(u)) for u in b] + [dictionary.eos()])
        write_indexed_dataset(folder / f"{split}.unitA", a_lines, len(dictionary))
        write_indexed_dataset(folder / f"{split}.unitB", b_lines, len(dictionary))
    return folder
