"""Fixtures of the evaluation tests."""

from __future__ import annotations

import numpy as np
import pytest
from dialogue_signals import SECONDS, SPANS_A, SPANS_B, stereo


@pytest.fixture
def scenario() -> np.ndarray:
    """The reference scenario as a [frames, 2] waveform at 16 kHz."""
    return stereo(SPANS_A, SPANS_B, SECONDS)
