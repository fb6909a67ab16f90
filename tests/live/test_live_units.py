"""Streaming units of the person's channel against the offline encoder on the same audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgslm.audio import load_audio
from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.live.units import StreamingUnits, exact_lookahead
from dgslm.models.resolve import DEMO_DIR

pytestmark = pytest.mark.usefixtures("one_thread")


def stream(encoder: UnitEncoder, wave: np.ndarray, lookahead: int, context: int = 50) -> list[int]:
    units = StreamingUnits(encoder, lookahead, context)
    out = [units.push(wave[i : i + 320]) for i in range(0, len(wave) - 319, 320)]
    assert all(u is None for u in out[: units.delay]) and None not in out[units.delay :]
    return [u for u in out if u is not None]


@pytest.fixture(scope="module")
def speech(reference) -> np.ndarray:
    wave, _ = load_audio(reference / "audio" / "stereo_test.wav")
    return np.concatenate([wave[:, 0], wave[:, 1]])  # ~6 s of speech and pauses


@pytest.fixture(scope="module")
def demo_encoder() -> UnitEncoder:
    return UnitEncoder.from_pretrained(DEMO_DIR / "hubert", DEMO_DIR / "hubert" / "kmeans.safetensors")


def test_demo_units_equal_offline_with_the_smoothing_lookahead(demo_encoder, speech):
    """Log-mel units are frame-local; the silence smoothing needs (5 - 1) + (3 - 1) frames ahead:
    with them every streamed unit equals the whole-file encoding (but the last frames, whose
    offline runs touch the end of the file)."""
    lookahead = exact_lookahead(demo_encoder)
    assert lookahead == 6
    offline = demo_encoder.units(torch.from_numpy(speech)[None])[0].tolist()
    live = stream(demo_encoder, speech, lookahead)
    assert len(live) == len(offline) - lookahead  # the last frames wait for audio that never came
    assert live[: len(offline) - 2 * lookahead] == offline[: len(offline) - 2 * lookahead]
    smoothed = sum(a != b for a, b in zip(offline, demo_encoder.quantizer(demo_encoder.reader(
        torch.from_numpy(speech)[None]))[0].tolist()))  # fmt: skip
    assert smoothed > 10  # the smoothing did change frames, so the look-ahead mattered


def test_demo_units_with_less_lookahead_disagree_only_near_runs(demo_encoder, speech):
    offline = demo_encoder.units(torch.from_numpy(speech)[None])[0].tolist()
    agreement = []
    for lookahead in (0, 2, 4, 6):
        live = stream(demo_encoder, speech, lookahead)
        n = len(offline) - 8
        agreement.append(np.mean([a == b for a, b in zip(live[:n], offline[:n])]))
    assert agreement[-1] == 1.0
    assert 0.8 < agreement[0] < 1.0
    assert agreement == sorted(agreement)


def test_hubert_units_are_those_of_their_window(reference, speech):
    """Each streamed HuBERT unit is the offline encoding of its window (``context`` frames
    before, ``lookahead`` after: the indexing of the windows is right). Short windows are the
    approximation whose agreement with whole-file units docs/live.md measures."""
    encoder = UnitEncoder.from_pretrained(
        reference / "hubert" / "hubert_small.pt", reference / "kmeans" / "km50.bin", 3
    )
    wave = speech[: 16000 * 2]
    lookahead, context = 3, 7
    live = stream(encoder, wave, lookahead, context)
    for t in (0, 5, 40, len(live) - 1):
        first = max(0, t - context)
        window = torch.from_numpy(wave[first * 320 : (t + lookahead) * 320 + 400])[None]
        assert live[t] == encoder.units(window)[0, t - first].item()
    offline = encoder.units(torch.from_numpy(wave)[None])[0].tolist()
    assert live != offline[: len(live)]  # short windows do change units
