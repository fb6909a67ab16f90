"""Scaled dot-product attention with dropout for training on CPUs.

PyTorch's CPU ``scaled_dot_product_attention`` has no fused kernel with dropout: it falls back
to its math path, which makes ~10 passes over every (T x T) score matrix (scale, a causal mask
built and applied, softmax, an all-masked-row guard, dropout) forward and again backward, and
computes all of it for the half of a causal matrix that is masked. :func:`dropout_attention`
computes the same function with its own backward:

- causal attention is computed in blocks of :data:`BLOCK` query rows, each against the keys up
  to its last row only: the masked upper blocks are never multiplied, soft-maxed, dropped out
  or back-propagated (at 1024 positions, 56 % of the full matrix is computed); only the
  diagonal block gets the mask;
- the dropout mask is drawn exactly as the math path draws it (``bernoulli_`` of the full
  (N, H, Tq, Tk) shape, the same generator calls), so the two agree to rounding. It is drawn
  into a buffer kept between calls (a fresh (T x T) tensor costs page faults on every call);
  only the blocks used are copied out, for the backward;
- the dropout scale ``1 / (1 - p)`` is applied to the (T x d) output and gradient, not to the
  (T x T) matrix, and the softmax scale to the queries (exact for power-of-two head sizes).

GPUs keep SDPA's fused kernels, which do support dropout.
"""

from __future__ import annotations

import functools
import threading

import torch
from torch import Tensor

BLOCK = 128  # query rows per block of causal attention

_Block = tuple[int, int, int]  # (first row, end row, end key)
_buffers = threading.local()  # per thread: {(device, dtype): tensor} holding the last mask drawn


def _draw_mask(shape: tuple[int, ...], keep: float, like: Tensor) -> Tensor:
    """``F.dropout``'s mask for a tensor of ``shape`` (1 = kept, with probability ``keep``) in
    ``like``'s dtype and device, in a reused buffer: valid until the next call in this thread."""
    buffers = _buffers.__dict__.setdefault("buffers", {})
    count, key = torch.Size(shape).numel(), (like.device, like.dtype)
    buffer = buffers.get(key)
    if buffer is None or buffer.numel() < count:
        buffer = buffers[key] = like.new_empty(count)
    return buffer[:count].view(shape).bernoulli_(keep)


@functools.lru_cache(maxsize=8)
def _causal_bias(queries: int, keys: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(queries, keys) additive mask: 0 on and below the diagonal, -inf above (SDPA's is_causal)."""
    return torch.full((queries, keys), float("-inf"), dtype=dtype, device=device).triu(1)


def _blocks(queries: int, keys: int, causal: bool) -> list[_Block]:
    if not causal:
        return [(0, queries, keys)]
    return [(start, min(start + BLOCK, queries), min(start + BLOCK, queries)) for start in range(0, queries, BLOCK)]


class _DropoutAttention(torch.autograd.Function):
    """(B, Tq, d) queries, (B, Tk, d) keys and values -> (B, Tq, d). ``bias``: an additive mask
    broadcastable to (B, Tq, Tk), or None; ``causal``: square causal attention in blocks."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None, causal: bool, p: float) -> Tensor:
        batch, queries, dim = q.shape
        keys = k.shape[1]
        mask = _draw_mask((batch, queries, keys), 1 - p, q)
        qs = q * dim**-0.5
        out = q.new_empty(batch, queries, v.shape[-1])
        blocks = _blocks(queries, keys, causal)
        probs_, dropped_, kept_ = [], [], []
        for start, end, key_end in blocks:
            kt = k[:, :key_end].transpose(1, 2)
            if causal:
                scores = torch.bmm(qs[:, start:end], kt)
                scores[:, :, start:end] += _causal_bias(end - start, end - start, q.dtype, q.device)
            elif bias is not None:
                scores = torch.baddbmm(bias, qs, kt)
            else:
                scores = torch.bmm(qs, kt)
            probs = torch.softmax(scores, dim=-1)
            kept = mask[:, start:end, :key_end].clone()
            dropped = probs * kept
            out[:, start:end] = torch.bmm(dropped, v[:, :key_end])
            probs_.append(probs)
            dropped_.append(dropped)
            kept_.append(kept)
        ctx.blocks, ctx.keep = blocks, 1 - p
        ctx.save_for_backward(qs, k, v, *probs_, *dropped_, *kept_)
        return out.mul_(1 / (1 - p))

    @staticmethod
    def backward(ctx, grad: Tensor):
        qs, k, v, *saved = ctx.saved_tensors
        blocks = ctx.blocks
        n = len(blocks)
        probs_, dropped_, kept_ = saved[:n], saved[n : 2 * n], saved[2 * n :]
        grad = grad * (1 / ctx.keep)
        acc = torch.promote_types(qs.dtype, torch.float32)  # sums over blocks in fp32 at least
        gq = torch.empty_like(qs)
        gk = torch.zeros(k.shape, dtype=acc, device=k.device)
        gv = torch.zeros(v.shape, dtype=acc, device=v.device)
        for (start, end, key_end), probs, dropped, kept in zip(blocks, probs_, dropped_, kept_):
            g = grad[:, start:end]
            gv[:, :key_end] += torch.bmm(dropped.transpose(1, 2), g)
            gp = torch.bmm(g, v[:, :key_end].transpose(1, 2)).mul_(kept)
            gs = torch._softmax_backward_data(gp, probs, -1, probs.dtype)
            gq[:, start:end] = torch.bmm(gs, k[:, :key_end])
            gk[:, :key_end] += torch.bmm(gs.transpose(1, 2), qs[:, start:end])
        gq.mul_(qs.shape[-1] ** -0.5)
        return gq, gk.to(k.dtype), gv.to(v.dtype), None, None, None


def dropout_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, is_causal: bool, p: float) -> Tensor:
    """``F.scaled_dot_product_attention(q, k, v, mask, p, is_causal)`` for (N, H, T, d) inputs
    (``mask`` broadcastable to (N, H, Tq, Tk)), with dropout ``p`` on the probabilities.
    Under autocast it computes in the autocast dtype, as SDPA does."""
    n, heads, queries, dim = q.shape
    keys = k.shape[-2]
    device = q.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    q3, k3, v3 = q.reshape(n * heads, queries, dim), k.reshape(n * heads, keys, dim), v.reshape(n * heads, keys, dim)
    causal = mask is None and is_causal and queries == keys
    bias = None
    if mask is not None:
        bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill_(~mask, float("-inf"))
    elif is_causal and not causal:
        bias = _causal_bias(queries, keys, q.dtype, q.device)
    if bias is not None and bias.dim() > 2:
        bias = bias.expand(n, heads, queries, keys).reshape(n * heads, queries, keys)
    with torch.autocast(device, enabled=False):
        out = _DropoutAttention.apply(q3, k3, v3, bias, causal, p)
    return out.view(n, heads, queries, v.shape[-1])
