"""The optimiser side of an update: fairseq's Adam, its learning-rate schedule, and gradient
scaling with clipping, each done in as few passes over the parameters as PyTorch allows."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

FUSED_ADAM_DEVICES = ("cpu", "cuda")  # where torch.optim.AdamW has a fused (one-kernel) step


def inverse_sqrt_lr(step: int, lr: float, warmup_updates: int, warmup_init_lr: float) -> float:
    """Linear warm-up from ``warmup_init_lr`` to ``lr``, then ``lr * sqrt(warmup / step)``."""
    if warmup_init_lr < 0:
        warmup_init_lr = 0.0 if warmup_updates > 0 else lr
    if step < warmup_updates:
        return warmup_init_lr + step * (lr - warmup_init_lr) / warmup_updates
    return lr * math.sqrt(max(warmup_updates, 1) / max(step, 1))


def adam(
    params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float], eps: float, weight_decay: float
) -> torch.optim.AdamW:
    """fairseq's "adam": decoupled weight decay (AdamW; coupled L2 would let --weight-decay 0.01
    outweigh the clipped gradients), stepped by one fused kernel where the device has one."""
    params = list(params)
    optimizer = torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    use_fused_kernels(optimizer)
    # load_state_dict brings back the flags of the run that saved the state: choose again
    optimizer.register_load_state_dict_post_hook(use_fused_kernels)
    return optimizer


def use_fused_kernels(optimizer: torch.optim.Optimizer) -> None:
    """Step with the fused kernel where the parameters' device has one."""
    for group in optimizer.param_groups:
        fused = all(p.device.type in FUSED_ADAM_DEVICES and p.is_floating_point() for p in group["params"])
        group.update(fused=fused, foreach=None)  # not fused: torch's default for the device


def scale_and_clip_grads_(params: Iterable[torch.nn.Parameter], scale: float, max_norm: float) -> float:
    """Multiply the gradients by ``scale``, then clip their total L2 norm to ``max_norm``
    (``inf``: no clipping), in one pass over them; returns the norm before clipping."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    norm = torch.nn.utils.get_total_norm(grads, foreach=True) * scale
    factor = scale * torch.clamp(max_norm / (norm + 1e-6), max=1.0) if math.isfinite(max_norm) else scale
    torch._foreach_mul_(grads, factor)
    return float(norm)
