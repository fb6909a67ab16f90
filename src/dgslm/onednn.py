"""Fused oneDNN layers for CPU inference, through PyTorch's own ``torch.ops.mkldnn`` ops (the
ones TorchInductor emits): linear layers and 1-D convolutions with their activation (GELU,
leaky ReLU) or a residual sum fused into one primitive, weights packed once per dtype.

Why: on x86 CPUs PyTorch runs fp32 ``nn.Linear`` through MKL, which on AMD CPUs takes a path
2-3x slower than oneDNN's AVX-512 kernels, and it runs 1-D convolutions on channels-first data,
reordering it on every call; each unfused activation or sum is one more pass over memory.

The functions take the usual modules and tensors. 1-D activations ``[B, C, L]`` are best kept
*channels-last strided* (``stride(1) == 1``, see :func:`channels_last`): a convolution then reads
and writes them without a reorder. Wherever the fused path does not apply (autograd on, a CUDA
tensor, a dtype other than float32/bfloat16, a PyTorch without these ops) the same functions
run the plain torch ops, with the same result up to float rounding. Under CPU autocast the fused
path computes in the autocast dtype, as autocast would.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_OPS = getattr(torch.ops, "mkldnn", None)
_HAVE_OPS = all(
    _OPS is not None and hasattr(_OPS, name)
    for name in ("_linear_pointwise", "_reorder_linear_weight", "_convolution_pointwise",
                 "_convolution_transpose_pointwise", "_reorder_convolution_weight")
)  # fmt: skip
_CACHE: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()
ACTIVATIONS = ("none", "gelu", "leaky_relu")
# A fused convolution primitive has a fixed cost per call (~30 us more than torch's own conv on
# an Intel Xeon with AMX, measured for 8-64 channels); it pays only from a few million
# multiply-adds per call (crossover measured at ~3-5 M): smaller convolutions run the plain op.
MIN_FUSED_CONV_MACS = 4_000_000


def fused_dtype(x: Tensor) -> torch.dtype | None:
    """The dtype the fused path computes ``x`` in, or None where it does not apply."""
    if not _HAVE_OPS or x.device.type != "cpu" or torch.is_grad_enabled():
        return None  # the fused ops have no backward
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    if dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return None
    return dtype if dtype in (torch.float32, torch.bfloat16) else None


def conv_macs(x: Tensor, conv: nn.Conv1d | nn.ConvTranspose1d) -> int:
    """Multiply-adds of ``conv`` on ``x`` [B, C, L] (about: edges not subtracted)."""
    positions = x.shape[0] * x.shape[-1]
    if isinstance(conv, nn.Conv1d):
        positions //= conv.stride[0]
    return conv.weight.numel() * positions


def channels_last(x: Tensor) -> Tensor:
    """``[B, C, L]`` with the same values, stored as ``[B, L, C]`` (a copy unless it already is)."""
    return x.transpose(1, 2).contiguous().transpose(1, 2)


def cached(owner: nn.Module, key: tuple, sources: Sequence[Tensor], build: Callable[[], Tensor]) -> Tensor:
    """``build()``, cached on ``owner`` until one of ``sources`` is replaced or changed in place.
    Weights made under ``torch.inference_mode`` have no version counter: only replacing them counts."""
    stamp = tuple((t.data_ptr(), 0 if t.is_inference() else t._version) for t in sources)
    cache = _CACHE.setdefault(owner, {})
    hit = cache.get(key)
    if hit is None or hit[0] != stamp:
        with torch.no_grad():
            hit = cache[key] = (stamp, build())
    return hit[1]


def _activate(y: Tensor, activation: str, slope: float) -> Tensor:
    if activation == "gelu":
        return F.gelu(y.float()).type_as(y)
    if activation == "leaky_relu":
        return F.leaky_relu(y, slope)
    return y


def _check(activation: str, residual: Tensor | None, transposed: bool = False) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if residual is not None and (activation != "none" or transposed):
        raise ValueError("a residual sum is fused without an activation, and not into a transposed convolution")


def linear(
    x: Tensor, layers: nn.Linear | Sequence[nn.Linear], activation: str = "none", residual: Tensor | None = None
) -> Tensor:
    """``activation(layer(x)) + residual``; several ``layers`` (same input width) run as one
    matrix product whose outputs are concatenated on the last dim. ``residual`` needs no
    ``activation`` (it is added last)."""
    _check(activation, residual)
    layers = (layers,) if isinstance(layers, nn.Linear) else tuple(layers)
    dtype = fused_dtype(x)
    if dtype is None:
        y = _activate(torch.cat([layer(x) for layer in layers], -1) if len(layers) > 1 else layers[0](x), activation, 0)
        return y if residual is None else residual + y
    params = [p for layer in layers for p in (layer.weight, layer.bias) if p is not None]

    def pack() -> tuple[Tensor, Tensor | None]:
        weight = torch.cat([layer.weight for layer in layers]).to(dtype)
        bias = None if layers[0].bias is None else torch.cat([layer.bias for layer in layers]).to(dtype)
        return torch.ops.mkldnn._reorder_linear_weight(weight, None), bias

    weight, bias = cached(layers[0], ("linear", len(layers), dtype), params, pack)
    x = x.to(dtype)
    if residual is not None:
        return torch.ops.mkldnn._linear_pointwise.binary(x, residual.to(dtype), weight, bias, "add")
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, activation, [], "none" if activation == "gelu" else "")


def conv1d(
    x: Tensor,
    conv: nn.Conv1d | nn.ConvTranspose1d,
    activation: str = "none",
    slope: float = 0.01,
    residual: Tensor | None = None,
) -> Tensor:
    """``activation(conv(x)) + residual`` (leaky ReLU with ``slope``) for ``x`` [B, C, L]; the
    fused path returns channels-last strided output. ``residual`` needs no ``activation``."""
    transposed = isinstance(conv, nn.ConvTranspose1d)
    _check(activation, residual, transposed)
    dtype = fused_dtype(x)
    if dtype is None or conv.padding_mode != "zeros" or conv_macs(x, conv) < MIN_FUSED_CONV_MACS:
        y = _activate(conv(x), activation, slope)
        return y if residual is None else residual + y
    x4 = x.to(dtype).unsqueeze(2).contiguous(memory_format=torch.channels_last)
    padding, stride, dilation = [0, conv.padding[0]], [1, conv.stride[0]], [1, conv.dilation[0]]
    params = [p for p in (conv.weight, conv.bias) if p is not None]

    def pack() -> tuple[Tensor, Tensor | None]:
        weight = conv.weight.to(dtype).unsqueeze(2).contiguous(memory_format=torch.channels_last)
        if not transposed:
            weight = torch.ops.mkldnn._reorder_convolution_weight(
                weight, padding, stride, dilation, conv.groups, list(x4.shape)
            )
        return weight, None if conv.bias is None else conv.bias.to(dtype)

    weight, bias = cached(conv, ("conv", dtype), params, pack)
    scalars = [slope] if activation == "leaky_relu" else []
    algorithm = "none" if activation == "gelu" else ""
    if transposed:
        y = torch.ops.mkldnn._convolution_transpose_pointwise(x4, weight, bias, padding, [0, conv.output_padding[0]],
                                                               stride, dilation, conv.groups, activation, scalars,
                                                               algorithm)  # fmt: skip
    elif residual is not None:
        other = residual.to(dtype).unsqueeze(2).contiguous(memory_format=torch.channels_last)
        y = torch.ops.mkldnn._convolution_pointwise.binary(x4, other, weight, bias, padding, stride, dilation,
                                                           conv.groups, "add", None, None, [], None)  # fmt: skip
    else:
        y = torch.ops.mkldnn._convolution_pointwise(x4, weight, bias, padding, stride, dilation, conv.groups,
                                                    activation, scalars, algorithm)  # fmt: skip
    return y.squeeze(2)
