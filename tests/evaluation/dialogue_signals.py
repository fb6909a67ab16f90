"""Stereo test dialogues with exactly known speech intervals (noise bursts on a 10 ms grid)."""

from __future__ import annotations

import numpy as np

SR = 16_000

# The reference scenario (seconds). A's 100 ms silence at 2.0-2.1 is bridged into one IPU;
# B's 1.0-1.5 lies inside A's IPU (overlap, no turn change); B's silence 11.2-11.4 is exactly
# 200 ms, so it separates two IPUs (a pause).
SPANS_A = [(0.5, 2.0), (2.1, 3.0), (3.5, 4.0), (6.0, 7.0), (9.0, 9.5)]
SPANS_B = [(1.0, 1.5), (4.3, 5.0), (6.5, 8.0), (10.0, 10.5), (10.8, 11.2), (11.4, 11.6)]
SECONDS = 12.0
EXPECTED = {
    "ipu": [
        (0.5, 3.0),
        (3.5, 4.0),
        (6.0, 7.0),
        (9.0, 9.5),
        (1.0, 1.5),
        (4.3, 5.0),
        (6.5, 8.0),
        (10.0, 10.5),
        (10.8, 11.2),
        (11.4, 11.6),
    ],
    "pause": [(3.0, 3.5), (10.5, 10.8), (11.2, 11.4)],
    "gap": [(4.0, 4.3), (5.0, 6.0), (8.0, 9.0), (9.5, 10.0)],
    "overlap": [(1.0, 1.5), (6.5, 7.0)],
}
PAUSE_SPEAKERS = [0, 1, 1]
GAP_SPEAKERS = [0, 1, 1, 0]


def bursts(spans, seconds: float, seed: int, sr: int = SR, offset: float = 0.0) -> np.ndarray:
    """White-noise bursts (std 0.1) at ``spans`` (+ ``offset`` s) over a -80 dB noise floor."""
    rng = np.random.default_rng(seed)
    wave = 1e-4 * rng.standard_normal(round(seconds * sr))
    for start, end in spans:
        a, b = round((start + offset) * sr), round((end + offset) * sr)
        wave[a:b] = 0.1 * rng.standard_normal(b - a)
    return wave.astype(np.float32)


def stereo(spans_a, spans_b, seconds: float, offset: float = 0.0) -> np.ndarray:
    return np.stack([bursts(spans_a, seconds, 1, offset=offset), bursts(spans_b, seconds, 2, offset=offset)], axis=1)
