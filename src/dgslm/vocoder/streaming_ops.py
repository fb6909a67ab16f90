"""Streaming versions of the unit HiFi-GAN's layers: each keeps its own cached left context.

Every operation here takes the next samples of its input stream, ``(B, C, n)`` with any ``n``
(0 included), and returns the next samples of its output stream. It emits output ``t`` once
its input up to ``t + delay`` has arrived; an offline (non-causal) convolution reads
``padding`` samples on the right, so with ``delay = padding`` the stream is exactly the offline
output, whatever the sizes of the steps. With a smaller ``delay`` the taps that read past the
input received so far read zeros (as the offline convolution does past the end of a sequence):
a look-ahead truncation, whose output depends on the steps' sizes (one frame per step in the
measurements of ``docs/live.md``). The left
context is always complete (a cache of the inputs still needed, zeros before the start of the
stream as offline), so the state is explicit and small: :meth:`reset` empties it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class StreamingOp:
    """A layer run on a stream; subclasses keep their state in attributes set by :meth:`reset`."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next input is the start of a new one."""
        self.buffer: Tensor | None = None

    def _cached(self, x: Tensor, left_zeros: int) -> Tensor:
        """The cached input (``left_zeros`` zeros at the start of a stream) followed by ``x``."""
        if self.buffer is None:
            self.buffer = x.new_zeros(x.shape[0], x.shape[1], left_zeros)
        return torch.cat([self.buffer, x], dim=2)


class Delay(StreamingOp):
    """The input stream ``samples`` samples later (aligns a residual with its conv path)."""

    def __init__(self, samples: int):
        self.samples = samples
        super().__init__()

    def __call__(self, x: Tensor) -> Tensor:
        if self.samples == 0:
            return x
        stream = self._cached(x, 0)
        ready = max(0, stream.shape[2] - self.samples)
        self.buffer = stream[:, :, ready:]
        return stream[:, :, :ready]


class StreamingConv(StreamingOp):
    """A ``Conv1d`` with symmetric ``padding`` (odd kernel, any dilation), ``delay`` samples behind."""

    def __init__(self, conv: nn.Conv1d, delay: int):
        (k,), (d,), (pad,) = conv.kernel_size, conv.dilation, conv.padding
        if conv.stride != (1,) or (k - 1) * d != 2 * pad or not 0 <= delay <= pad:
            raise ValueError(f"need a stride-1 conv padded by half its span and 0 <= delay <= {pad}, got {delay}")
        self.conv, self.pad, self.delay = conv, pad, delay
        super().__init__()

    def __call__(self, x: Tensor) -> Tensor:
        stream = self._cached(x, self.pad)  # inputs [emitted - pad, received)
        ready = stream.shape[2] - self.pad - self.delay
        if ready <= 0:
            self.buffer = stream
            return x.new_zeros(x.shape[0], self.conv.out_channels, 0)
        self.buffer = stream[:, :, ready:]
        if self.delay < self.pad:  # the taps past the look-ahead read zeros
            stream = F.pad(stream, (0, self.pad - self.delay))
        return F.conv1d(stream, self.conv.weight, self.conv.bias, dilation=self.conv.dilation, groups=self.conv.groups)


class StreamingConvTranspose(StreamingOp):
    """A ``ConvTranspose1d`` (stride ``u``, padding ``p``), ``delay`` output samples behind
    (``delay = p`` exact: output ``t`` takes input ``(t + p) // u`` last)."""

    def __init__(self, conv: nn.ConvTranspose1d, delay: int):
        (self.kernel,), (self.stride,), (self.pad,) = conv.kernel_size, conv.stride, conv.padding
        if conv.output_padding != (0,) or conv.dilation != (1,) or not 0 <= delay <= self.pad:
            raise ValueError(f"need a plain transposed conv and 0 <= delay <= {self.pad}, got {delay}")
        self.conv, self.delay = conv, delay
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.first = 0  # input index of the cache's first sample
        self.emitted = 0  # output samples given out

    def __call__(self, x: Tensor) -> Tensor:
        stream = self._cached(x, 0)
        end = (self.first + stream.shape[2]) * self.stride - self.delay  # outputs [emitted, end) are ready
        if end <= self.emitted:
            self.buffer = stream
            return x.new_zeros(x.shape[0], self.conv.out_channels, 0)
        full = F.conv_transpose1d(stream, self.conv.weight, self.conv.bias, stride=self.stride)
        start = self.emitted - (self.first * self.stride - self.pad)  # full[j]: output first * u - p + j
        out = full[:, :, start : start + end - self.emitted]
        self.emitted = end
        first = max(0, (end + self.pad - self.kernel) // self.stride + 1)  # earliest input still read
        self.buffer, self.first = stream[:, :, first - self.first :], first
        return out
