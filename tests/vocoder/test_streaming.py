"""The streaming unit HiFi-GAN (every layer with its own left context) against offline vocoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dgslm.models.resolve import DEMO_DIR
from dgslm.vocoder.config import VocoderConfig
from dgslm.vocoder.generator import UnitGenerator
from dgslm.vocoder.streaming import StreamingGenerator, exact_lookahead, frame_crops, stream_delay
from dgslm.vocoder.streaming_ops import StreamingConv, StreamingConvTranspose
from dgslm.vocoder.unit_vocoder import UnitVocoder

pytestmark = pytest.mark.usefixtures("one_thread")

CHUNKS = [1, 3, 2, 7, 1, 1, 5, 4]  # frames per step: the stream must not depend on them


@pytest.fixture(scope="module")
def demo() -> UnitGenerator:
    return UnitVocoder.from_pretrained(DEMO_DIR / "hifigan").generator


@pytest.fixture(scope="module")
def full_size() -> UnitGenerator:
    """The released vocoder's configuration (512 channels, speaker table), random weights."""
    torch.manual_seed(3)
    cfg = VocoderConfig(embedding_dim=128, model_in_dim=256, multispkr="from_input_file", num_speakers=200)
    return UnitGenerator(cfg).eval()


def stream(generator: UnitGenerator, units: torch.Tensor, speaker, chunks=CHUNKS, reach: float = 1.0) -> np.ndarray:
    s = StreamingGenerator(generator, reach)
    cond = generator.conditioning(units, speaker)
    out, start, i = [], 0, 0
    while start < cond.shape[2]:
        n = chunks[i % len(chunks)]
        out.append(s.step(cond[:, :, start : start + n]))
        start, i = start + n, i + 1
    wave = torch.cat(out, dim=1)[0].numpy()
    assert len(wave) == cond.shape[2] * generator.cfg.hop_size - s.delay
    return wave


@torch.no_grad()
@pytest.mark.parametrize("name, units, speaker", [("demo", 70, None), ("full_size", 30, 7)])
def test_stream_is_offline_vocoding(request, name, units, speaker):
    """Whatever the steps' sizes, the stream is offline vocoding of the same units, ``delay``
    samples late (float rounding only: |error| < 1e-4, the offline audio peaks near 1)."""
    generator = request.getfixturevalue(name)
    torch.manual_seed(0)
    code = torch.randint(0, generator.cfg.num_embeddings, (1, units))
    spk = None if speaker is None else torch.tensor([speaker])
    offline = generator(code, spk)[0].numpy()
    live = stream(generator, code, spk)
    assert len(live) > 5 * 320 and np.abs(offline).max() > 0.05
    assert np.abs(live - offline[: len(live)]).max() < 1e-4


def test_exact_lookahead_of_the_released_configuration(demo, full_size):
    """About 20 units: conv_pre 3, the first stage's kernel-11 block 12, the second's 3, ..."""
    assert stream_delay(full_size) == stream_delay(demo) == 6418  # output samples
    assert exact_lookahead(full_size) == exact_lookahead(demo) == 21
    assert stream_delay(demo, reach=0.5) < stream_delay(demo) / 2


@torch.no_grad()
def test_stream_is_deterministic_and_reset_starts_again(demo):
    code = torch.randint(0, 100, (1, 40), generator=torch.Generator().manual_seed(1))
    s = StreamingGenerator(demo)
    cond = demo.conditioning(code)
    first = torch.cat([s.step(cond[:, :, i : i + 1]) for i in range(40)], dim=1)
    s.reset()
    again = torch.cat([s.step(cond[:, :, i : i + 1]) for i in range(40)], dim=1)
    assert torch.equal(first, again)
    torch.testing.assert_close(StreamingGenerator(demo).step(cond), first, atol=1e-6, rtol=0)  # one step: rounding


@torch.no_grad()
def test_a_shorter_reach_is_a_worse_approximation(demo):
    """Layers reading zeros for the samples not yet there: shorter delay, large error (why the
    live vocoder windows short look-aheads instead; docs/live.md)."""
    code = torch.randint(0, 100, (1, 70), generator=torch.Generator().manual_seed(2))
    offline = demo(code)[0].numpy()
    errors = []
    for reach in (0.5, 0.2):
        live = stream(demo, code, None, chunks=[1], reach=reach)[2000:]
        errors.append(float(np.sqrt(np.mean((live - offline[2000 : 2000 + len(live)]) ** 2))))
    assert 0 < errors[0] < errors[1]


@pytest.mark.parametrize("delay", [0, 1, 4, 6])
def test_conv_ops_on_a_stream(delay):
    """A conv waits for ``delay`` of its ``padding`` samples on the right and reads zeros past
    the input received: one sample per step, output t is the offline conv of the input up to
    t + delay; with delay = padding, it is the offline conv whatever the steps."""
    torch.manual_seed(0)
    conv = nn.Conv1d(3, 4, 7, dilation=2, padding=6)
    x = torch.randn(1, 3, 30)
    with torch.no_grad():
        op = StreamingConv(conv, delay)
        out = torch.cat([op(x[:, :, i : i + 1]) for i in range(30)], dim=2)
        assert out.shape[2] == 30 - delay
        for t in range(30 - delay):
            torch.testing.assert_close(out[:, :, t], conv(x[:, :, : t + delay + 1])[:, :, t])
        op = StreamingConv(conv, 6)
        out = torch.cat([op(x[:, :, i : i + 4]) for i in range(0, 30, 4)], dim=2)
        torch.testing.assert_close(out, conv(x)[:, :, :24])
    with pytest.raises(ValueError, match="delay"):
        StreamingConv(conv, 7)


def test_transposed_conv_on_a_stream():
    torch.manual_seed(0)
    up = nn.ConvTranspose1d(3, 2, 11, stride=5, padding=3)
    x = torch.randn(1, 3, 20)
    with torch.no_grad():
        offline = up(x)
        op = StreamingConvTranspose(up, 3)
        out = torch.cat([op(x[:, :, i : i + n]) for i, n in ((0, 1), (1, 2), (3, 1), (4, 16))], dim=2)
    assert out.shape[2] == 20 * 5 - 3
    torch.testing.assert_close(out, offline[:, :, : out.shape[2]])


@torch.no_grad()
@pytest.mark.parametrize("name", ["demo", "full_size"])
def test_frame_crops_decode_what_one_frame_depends_on(request, name):
    """Decoding with a frame's crops gives that frame of the whole decode, for every window
    length and position (the live vocoder's window)."""
    generator = request.getfixturevalue(name)
    code = torch.randint(0, 100, (1, 9), generator=torch.Generator().manual_seed(4))
    cond = generator.conditioning(code, None if generator.spkr is None else torch.tensor([1]))
    for length in (1, 2, 7, 9) if name == "demo" else (7,):
        whole = generator.decode(cond[:, :, :length])[0, 0]
        for frame in range(length):
            crops, samples = frame_crops(generator, length, frame)
            cropped = generator.decode(cond[:, :, :length], crops)[0, 0, samples]
            torch.testing.assert_close(cropped, whole[frame * 320 : (frame + 1) * 320], atol=1e-5, rtol=0)
