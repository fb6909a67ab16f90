"""The optimiser side of an update: fused Adam equals torch's reference AdamW step, and the
one-pass gradient scaling + clipping equals scaling then ``clip_grad_norm_``."""

from __future__ import annotations

import math

import pytest
import torch

from dgslm.training.optim import adam, inverse_sqrt_lr, scale_and_clip_grads_


def _params_with_grads(seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(s, generator=g)) for s in [(5, 3), (3,), (7, 2)]]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g)
    return params


@pytest.mark.parametrize("max_norm", [0.5, 1e9, math.inf])
def test_scaling_and_clipping_in_one_pass_equals_scaling_then_clip_grad_norm(max_norm):
    ours, reference = _params_with_grads(), _params_with_grads()
    norm = scale_and_clip_grads_(ours, 0.25, max_norm)
    for p in reference:
        p.grad.mul_(0.25)
    expected = torch.nn.utils.clip_grad_norm_(reference, max_norm)
    assert norm == pytest.approx(float(expected), rel=1e-6)
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-6, atol=1e-7)
    if max_norm == 0.5:
        assert float(torch.nn.utils.get_total_norm([p.grad for p in ours])) == pytest.approx(0.5, rel=1e-5)


def test_fused_adam_steps_as_the_reference_adamw_and_stays_fused_after_loading_a_state():
    ours, reference = _params_with_grads(), _params_with_grads()
    optimizer = adam(ours, 1e-2, (0.9, 0.98), 1e-8, 0.1)
    torch_adamw = torch.optim.AdamW(reference, lr=1e-2, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.1, foreach=False)
    assert optimizer.param_groups[0]["fused"]
    for _ in range(3):
        optimizer.step()
        torch_adamw.step()
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    optimizer.load_state_dict(torch_adamw.state_dict())  # a state saved by an unfused run
    assert optimizer.param_groups[0]["fused"]


def test_inverse_sqrt_schedule_warms_up_then_decays():
    assert inverse_sqrt_lr(0, 1e-3, 10, 1e-7) == 1e-7
    assert inverse_sqrt_lr(10, 1e-3, 10, 1e-7) == pytest.approx(1e-3)
    assert inverse_sqrt_lr(40, 1e-3, 10, 1e-7) == pytest.approx(5e-4)
