"""Scaled dot-product attention with dropout for training on CPUs.

PyTorch's CPU ``scaled_dot_product_attention`` has no fused kernel with dropout: it falls back
to its math path, which makes ~10 passes over every (T x T) score matrix (scale, a causal mask
built and applied, softmax, an all-masked-row guard, dropout) forward and again backward.
:func:`dropout_attention` computes the same function in four: ``baddbmm`` (scale and
additive mask in the product), softmax, ``F.dropout`` and ``bmm``. It draws its dropout mask
exactly as the math path does (``F.dropout`` on the probabilities, the same generator calls),
so the two agree to rounding. GPUs keep the fused kernels, which do support dropout.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor


@functools.lru_cache(maxsize=8)
def _causal_bias(queries: int, keys: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(queries, keys) additive mask: 0 on and below the diagonal, -inf above (SDPA's is_causal)."""
    return torch.full((queries, keys), float("-inf"), dtype=dtype, device=device).triu(1)


def _bias(mask: Tensor | None, is_causal: bool, q: Tensor, keys: int) -> Tensor | None:
    """The additive form of a boolean ``mask`` (True = may attend) or of ``is_causal``."""
    if mask is not None:
        return torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill_(~mask, float("-inf"))
    if is_causal:
        return _causal_bias(q.shape[-2], keys, q.dtype, q.device)
    return None


def dropout_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, is_causal: bool, p: float) -> Tensor:
    """``F.scaled_dot_product_attention(q, k, v, mask, p, is_causal)`` for (N, H, T, d) inputs
    (``mask`` broadcastable to (N, H, Tq, Tk)), with dropout ``p`` on the probabilities."""
    n, heads, queries, dim = q.shape
    keys = k.shape[-2]
    q3, k3, v3 = q.reshape(n * heads, queries, dim), k.reshape(n * heads, keys, dim), v.reshape(n * heads, keys, dim)
    bias = _bias(mask, is_causal, q, keys)
    if bias is None:
        bias = q3.new_zeros(())
    elif bias.dim() > 2:
        bias = bias.expand(n, heads, queries, keys).reshape(n * heads, queries, keys)
    scores = torch.baddbmm(bias, q3, k3.transpose(1, 2), alpha=dim**-0.5)
    probs = F.dropout(torch.softmax(scores, dim=-1), p, training=True)
    return torch.bmm(probs, v3).view(n, heads, queries, dim)
