"""The CPU training attention equals PyTorch's scaled_dot_product_attention with dropout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dgslm.lm import attention
from dgslm.lm.attention import dropout_attention


def _inputs(keys: int, dtype: torch.dtype) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    shapes = [(3, 2, 7, 8), (3, 2, keys, 8), (3, 2, keys, 8)]
    return [torch.randn(s, generator=g).to(dtype).requires_grad_() for s in shapes]


def _run(fn, inputs: list[torch.Tensor], seed: int) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    out = fn(*inputs)
    grads = torch.autograd.grad(out, inputs, torch.ones_like(out).cumsum(-1))
    return [out, *grads]


def _mask(keys: int) -> torch.Tensor:
    """Per row of the batch (3, 1, 7, keys): a causal mask with some keys padded."""
    mask = torch.ones(7, keys, dtype=torch.bool).tril(keys - 7).expand(3, 1, 7, keys).clone()
    mask[1, ..., :2] = False
    mask[..., torch.arange(7), torch.arange(7) + keys - 7] = True  # no row is all masked
    return mask


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
@pytest.mark.parametrize("case", ["causal", "causal-blocks", "mask", "none"])
def test_same_outputs_and_gradients_as_sdpa_with_the_same_dropout(case, dtype, tol, monkeypatch):
    if case == "causal-blocks":  # 7 queries in blocks of 3, 3 and 1 rows
        monkeypatch.setattr(attention, "BLOCK", 3)
        case = "causal"
    keys = 7 if case == "causal" else 11
    mask = _mask(keys) if case == "mask" else None
    causal = case == "causal"
    inputs = _inputs(keys, dtype)
    ours = _run(lambda q, k, v: dropout_attention(q, k, v, mask, causal, 0.3), inputs, seed=5)
    sdpa = _run(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask, 0.3, causal), inputs, seed=5)
    for a, b in zip(ours, sdpa):
        assert a.dtype == dtype
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    other = _run(lambda q, k, v: dropout_attention(q, k, v, mask, causal, 0.3), inputs, seed=6)
    assert not torch.equal(ours[0], other[0])  # the dropout is really drawn


def test_autocast_computes_in_bfloat16():
    q, k, v = _inputs(7, torch.float32)
    with torch.autocast("cpu", torch.bfloat16):
        out = dropout_attention(q, k, v, None, True, 0.1)
    assert out.dtype == torch.bfloat16
