"""1-D convolution that uses oneDNN on a CPU where torch's own choice is its slow reference kernel.

torch sends a batch-1 convolution of a short input with a ``(C, C, 1, k)`` (1-D) weight to its
reference kernels (``slow_conv2d`` / ``slow_conv_dilated2d``), several times slower than oneDNN
for the unit HiFi-GAN's wide and dilated convolutions on the few frames the live vocoder runs
(e.g. 256 channels, kernel 11, dilation 5, 5 samples: about 5x). For inference on a CPU,
:func:`conv1d` calls oneDNN for those; elsewhere (training, CUDA, small convs where the
reference kernel wins) it is ``torch.nn.functional.conv1d``. Both give the same result up to
float rounding (about 1e-6 relative).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ONEDNN_MIN_TAPS = 1024  # input channels x kernel from which oneDNN is faster than the reference kernel


def _onednn(x: Tensor, weight: Tensor, dilation: int) -> bool:
    return (
        x.device.type == "cpu"
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and weight.shape[1] * weight.shape[2] >= ONEDNN_MIN_TAPS
    )


def conv1d(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int = 0, dilation: int = 1,
           groups: int = 1) -> Tensor:  # fmt: skip
    """``F.conv1d(x, weight, bias, padding=padding, dilation=dilation, groups=groups)`` (stride 1),
    through oneDNN where that is faster (see the module docstring); autocast is honoured."""
    if not _onednn(x, weight, dilation):
        return F.conv1d(x, weight, bias, padding=padding, dilation=dilation, groups=groups)
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    bias = None if bias is None else bias.to(dtype)
    return torch.mkldnn_convolution(x.to(dtype), weight.to(dtype), bias, [padding], [1], [dilation], groups)


class Conv1d(nn.Conv1d):
    """``nn.Conv1d`` (same parameters and state dict) computed by :func:`conv1d` (stride 1, zero padding)."""

    def _conv_forward(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.stride != (1,) or self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super()._conv_forward(x, weight, bias)
        return conv1d(x, weight, bias, self.padding[0], self.dilation[0], self.groups)
