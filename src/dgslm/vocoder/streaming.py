"""A streaming unit HiFi-GAN: one unit in, ``hop_size`` samples out, every layer on a stream.

:class:`StreamingGenerator` runs the layers of a :class:`~dgslm.vocoder.generator.UnitGenerator`
(the same module, the same weights) as streaming operations (:mod:`dgslm.vocoder.streaming_ops`)
that keep their own left context, so each new unit costs one frame of compute through each
layer, and the stream equals offline vocoding of the same units (up to float rounding).

The price is latency: the generator is not causal, and each layer waits for the samples its
kernel reads on the right, about 20 units in all for the released configuration
(:func:`exact_lookahead`). Reading fewer (zeros in place of the samples not yet there, layer
by layer) was measured and is unusable: the network has never seen zeros inside a signal, and
every truncated layer costs SNR (``docs/live.md``). For a short look-ahead the live vocoder
(:mod:`dgslm.live.vocoder`) runs the generator on a short window instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgslm.vocoder.generator import LRELU_SLOPE, ResBlock, UnitGenerator
from dgslm.vocoder.streaming_ops import Delay, StreamingConv, StreamingConvTranspose, StreamingOp


def _waits(conv: nn.Module, reach: float) -> int:
    """Samples a conv (or transposed conv) waits for on the right: ``reach`` of its padding."""
    return math.floor(reach * conv.padding[0])


def stages(generator: UnitGenerator) -> list[list[ResBlock]]:
    """The residual blocks after each upsampling layer (their outputs are averaged)."""
    kernels = len(generator.cfg.resblock_kernel_sizes)
    return [list(generator.resblocks[i * kernels : (i + 1) * kernels]) for i in range(len(generator.ups))]


def block_delay(block: ResBlock, reach: float = 1.0) -> int:
    """Samples a residual block's stream is behind its input."""
    return sum(_waits(conv, reach) for conv in [*block.convs1, *block.convs2])


def stream_delay(generator: UnitGenerator, reach: float = 1.0) -> int:
    """Output samples a :class:`StreamingGenerator` is behind its input."""
    g, hop = generator, generator.cfg.hop_size
    samples = _waits(g.conv_pre, reach) * hop + _waits(g.conv_post, reach)
    for i, (up, stage) in enumerate(zip(g.ups, stages(g))):
        stage_delay = _waits(up, reach) + max(block_delay(b, reach) for b in stage)
        samples += stage_delay * hop // math.prod(g.cfg.upsample_rates[: i + 1])
    return samples


def exact_lookahead(generator: UnitGenerator) -> int:
    """Units of look-ahead from which a frame's audio is final: offline vocoding."""
    return math.ceil(stream_delay(generator) / generator.cfg.hop_size)


def frame_crops(generator: UnitGenerator, length: int, frame: int) -> tuple[list[tuple[slice, slice]], slice]:
    """What output frame ``frame`` of a ``length``-frame :meth:`UnitGenerator.decode` depends on:
    the ``crops`` of each stage (its upsampled samples, its output samples) and the frame's slice
    of the cropped output. Decoding with them gives the frame's samples of the whole decode
    (the live vocoder's window: the late, fast stages then compute little more than the frame)."""
    g, hop = generator, generator.cfg.hop_size
    lo, hi = frame * hop - g.conv_post.padding[0], (frame + 1) * hop + g.conv_post.padding[0]
    ranges = []  # per stage, from the last: global ranges of its upsampled and output samples kept
    spans = [max(map(block_delay, stage)) for stage in stages(g)]
    for i in reversed(range(len(g.ups))):
        size = length * math.prod(g.cfg.upsample_rates[: i + 1])
        out = (max(0, lo), min(size, hi))
        upsampled = (max(0, out[0] - spans[i]), min(size, out[1] + spans[i]))
        ranges.append((upsampled, out))
        (k,), (u,), (p,) = g.ups[i].kernel_size, g.ups[i].stride, g.ups[i].padding
        lo, hi = -((k - 1 - p - upsampled[0]) // u), (upsampled[1] - 1 + p) // u + 1  # the inputs they read
    crops, start = [], 0  # start: global index of the first sample kept
    for (upsampled, out), rate in zip(reversed(ranges), g.cfg.upsample_rates):
        start *= rate
        crops.append(
            (slice(upsampled[0] - start, upsampled[1] - start), slice(out[0] - upsampled[0], out[1] - upsampled[0]))
        )
        start = out[0]
    return crops, slice(frame * hop - start, (frame + 1) * hop - start)


class StreamingResBlock:
    """A :class:`ResBlock` on a stream, ``delay`` samples behind (its own delay, or more to wait
    for the wider blocks it is averaged with)."""

    def __init__(self, block: ResBlock, delay: int, reach: float):
        pairs = zip(block.convs1, block.convs2)
        self.convs = [StreamingConv(conv, _waits(conv, reach)) for pair in pairs for conv in pair]
        self.skips = [Delay(a.delay + b.delay) for a, b in zip(self.convs[::2], self.convs[1::2])]
        self.out = Delay(delay - block_delay(block, reach))
        self.ops: list[StreamingOp] = [*self.convs, *self.skips, self.out]

    def __call__(self, x: Tensor) -> Tensor:
        for conv1, conv2, skip in zip(self.convs[::2], self.convs[1::2], self.skips):
            t = conv1(F.leaky_relu(x, LRELU_SLOPE))
            x = skip(x) + conv2(F.leaky_relu(t, LRELU_SLOPE))
        return self.out(x)


class StreamingGenerator:
    """:meth:`step` the next conditioning frames of a unit stream -> the next output samples.

    After frames ``[0, n)`` have gone in, samples ``[0, n * hop - delay)`` have come out. With
    ``reach`` 1 (the default) the output stream is offline vocoding of the input stream; with
    ``reach`` < 1 every layer waits for that share of the samples it reads on the right and
    reads zeros for the rest (a shorter delay, an approximation; see the module docstring).
    """

    def __init__(self, generator: UnitGenerator, reach: float = 1.0):
        if not 0 <= reach <= 1:
            raise ValueError(f"reach must be in [0, 1], got {reach}")
        g = self.generator = generator
        self.delay = stream_delay(g, reach)
        self.pre = StreamingConv(g.conv_pre, _waits(g.conv_pre, reach))
        self.ups = [StreamingConvTranspose(up, _waits(up, reach)) for up in g.ups]
        self.stages = [[StreamingResBlock(b, max(block_delay(o, reach) for o in stage), reach) for b in stage]
                       for stage in stages(g)]  # fmt: skip
        self.post = StreamingConv(g.conv_post, _waits(g.conv_post, reach))
        self.ops: list[StreamingOp] = [self.pre, *self.ups, self.post]
        self.ops += [op for stage in self.stages for block in stage for op in block.ops]

    def reset(self) -> None:
        """Start a new stream."""
        for op in self.ops:
            op.reset()

    def step(self, x: Tensor) -> Tensor:
        """Conditioning frames ``(B, model_in_dim, n)`` -> the next waveform samples ``(B, m)``."""
        x = self.pre(x)
        for up, stage in zip(self.ups, self.stages):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            x = sum(block(x) for block in stage) / len(stage)
        return torch.tanh(self.post(F.leaky_relu(x))).squeeze(1)
