"""The SpeechDLM's linear layers on CPU: the same product in whichever of two layouts is faster.

A decoding step at small batch reads every weight once for a few rows; how fast MKL/oneDNN read
it depends on the layout of the product, the dtype and the CPU (measured in docs/speed-dtype.md).
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_TRANSPOSED_BF16_ROWS = 512  # beyond (a long prefill chunk) oneDNN's x @ W^T is faster again


@functools.cache
def _cpu_vendor() -> str:
    """The CPU's vendor id (``GenuineIntel``, ``AuthenticAMD``), "" where /proc/cpuinfo is not read."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    return ""


def transposed_product(x2d: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear(x2d, weight, bias)`` computed as ``W @ x^T`` (``x^T`` a strided view), made
    contiguous again: the layout in which MKL/oneDNN read a CPU weight fastest for few rows
    (see :class:`Linear`). Same products, another summation order."""
    y = weight @ x2d.T if bias is None else torch.addmm(bias[:, None], weight, x2d.T)
    return y.T.contiguous()


def transposed_layout(x: Tensor, weight: Tensor, rows: int) -> bool:
    """Whether :func:`transposed_product` is the faster CPU product of ``rows`` rows of ``x``:
    bfloat16 weights (decoding) up to 512 rows; float32 at 2-4 rows on AMD CPUs only."""
    if x.device.type != "cpu" or x.dtype != weight.dtype:
        return False
    if weight.dtype == torch.bfloat16:
        return rows <= _TRANSPOSED_BF16_ROWS
    return weight.dtype == torch.float32 and 2 <= rows <= 4 and _cpu_vendor() == "AuthenticAMD"


def linear_product(x2d: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear`` of 2-D ``x2d`` in the faster layout (:func:`transposed_layout`)."""
    if transposed_layout(x2d, weight, x2d.shape[0]):
        return transposed_product(x2d, weight, bias)
    return F.linear(x2d, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` that picks, on CPU, the faster of two layouts of the same product.

    Measured (docs/speed-dtype.md): for a few rows of float32 on an AMD EPYC, MKL reads the
    weight 2-3x faster as ``W @ x^T`` (``x^T`` a strided view: a contiguous copy of it is slow
    again) than in ``F.linear``'s ``x @ W^T``; on an Intel Xeon it is the other way round
    (2x). For bfloat16 weights (decoding, :mod:`dgslm.lm.precision`) oneDNN's ``W @ x^T`` is
    1.3-1.7x faster at 2 to 512 rows on the Intel Xeon (AMX; 3x slower at 2048). The output
    is made contiguous so that the next layer gets the fast layout too. Same products,
    another summation order (differences ~1e-6 in float32). Other shapes, dtypes and
    devices: F.linear.
    """

    def forward(self, x: Tensor) -> Tensor:
        rows = x.numel() // self.in_features
        if not transposed_layout(x, self.weight, rows):
            return F.linear(x, self.weight, self.bias)
        y = transposed_product(x.reshape(rows, self.in_features), self.weight, self.bias)
        return y.view(*x.shape[:-1], self.out_features)

    @classmethod
    def concatenated(cls, parts: list[Linear]) -> Linear:
        """One layer whose outputs are those of ``parts`` side by side (copies of their weights)."""
        has_bias = parts[0].bias is not None
        weight = parts[0].weight
        fused = cls(parts[0].in_features, sum(p.out_features for p in parts), has_bias, weight.device, weight.dtype)
        with torch.no_grad():
            fused.weight.copy_(torch.cat([p.weight for p in parts]))
            if has_bias:
                fused.bias.copy_(torch.cat([p.bias for p in parts]))
        return fused.requires_grad_(False)
