"""The streaming vocoder against offline vocoding of the same units."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgslm.audio import load_audio
from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.live.vocoder import StreamingVocoder
from dgslm.models.resolve import DEMO_DIR
from dgslm.vocoder.unit_vocoder import UnitVocoder

pytestmark = pytest.mark.usefixtures("one_thread")

WARM_UP = 8  # frames


@pytest.fixture(scope="module")
def vocoder() -> UnitVocoder:
    return UnitVocoder.from_pretrained(DEMO_DIR / "hifigan")


@pytest.fixture(scope="module")
def units(reference) -> list[int]:
    """Demo units of 3 s of real speech and pauses."""
    encoder = UnitEncoder.from_pretrained(DEMO_DIR / "hubert", DEMO_DIR / "hubert" / "kmeans.safetensors")
    wave, _ = load_audio(reference / "audio" / "stereo_test.wav")
    return encoder.units(torch.from_numpy(wave[:, 0])[None])[0].tolist()


def stream(vocoder: UnitVocoder, units: list[int], context: int, lookahead: int) -> np.ndarray:
    voc = StreamingVocoder(vocoder, 0, context, lookahead)
    out = [voc.push(u) for u in units]
    assert all(o is None for o in out[:lookahead]) and all(o.shape == (320,) for o in out[lookahead:])
    return np.concatenate(out[lookahead:])


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10((reference**2).sum() / ((reference - estimate) ** 2).sum()))


def test_a_lookahead_over_the_receptive_field_is_an_exact_stream(vocoder, units):
    """21 units of look-ahead or more: every layer streams with its own left context (no
    window), and the stream is offline vocoding from the first frame on."""
    offline = vocoder.code2wav(units).numpy()
    voc = StreamingVocoder(vocoder, 0, context=4, lookahead=21)
    assert voc.exact and not StreamingVocoder(vocoder, 0, 4, 20).exact
    live = stream(vocoder, units, context=4, lookahead=21)
    assert np.abs(live - offline[: len(live)]).max() < 1e-5


def test_an_exact_stream_runs_skipped_units_with_the_next_frame(vocoder, units):
    """A skipped frame returns nothing; its unit goes through the stream with the next push, so
    the frames after it are still offline vocoding."""
    offline = vocoder.code2wav(units).numpy()
    voc = StreamingVocoder(vocoder, 0, lookahead=21)
    out = {}
    for i, unit in enumerate(units):
        if i in (30, 31, 60):
            voc.skip(unit)
        else:
            out[i - 21] = voc.push(unit)
    frames = [f for f in out if f >= 0]
    assert frames and 30 - 21 not in out and 60 - 21 not in out
    for f in frames:
        assert np.abs(out[f] - offline[f * 320 : (f + 1) * 320]).max() < 1e-5


def test_default_window_is_offline_vocoding_within_tolerance(vocoder, units):
    """Stated tolerance (docs/live.md): after warm-up, >= 20 dB SNR and |error| < 0.03 (on the
    generator's own scale, before the config's output gain) against offline vocoding for the
    default 4 units behind and 2 ahead; less look-ahead is worse."""
    offline = vocoder.code2wav(units).numpy()
    start = WARM_UP * 320
    live = stream(vocoder, units, context=4, lookahead=2)
    reference = offline[start : len(live)]
    assert snr_db(reference, live[start:]) >= 20
    gain = 10 ** (vocoder.output_stage.gain_db / 20)
    assert np.abs(live[start:] - reference).max() < 0.03 * gain
    less = stream(vocoder, units, context=4, lookahead=0)
    assert snr_db(reference, less[start : len(live)]) < 10


def test_reset_starts_again(vocoder, units):
    voc = StreamingVocoder(vocoder, 0, 4, 2)
    first = [voc.push(u) for u in units[:20]]
    voc.reset()
    again = [voc.push(u) for u in units[:20]]
    assert all((a is None and b is None) or np.array_equal(a, b) for a, b in zip(first, again))
