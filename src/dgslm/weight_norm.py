"""Weight normalisation (Salimans & Kingma 2016) folded into plain weights: w = g * v / ||v||.

The original checkpoints store weight-normed convolutions as ``weight_g`` / ``weight_v`` pairs
(HuBERT's positional conv, every conv of the unit HiFi-GAN); inference uses the folded weight.
"""

from __future__ import annotations

from torch import Tensor


def norm_except_dim(v: Tensor, dim: int = 0) -> Tensor:
    """||v|| over every dimension except ``dim`` (kept with size 1), as ``weight_norm(dim=...)``."""
    return v.norm(dim=[d for d in range(v.dim()) if d != dim], keepdim=True)


def fold_weight_norm(g: Tensor, v: Tensor, dim: int = 0) -> Tensor:
    """The plain weight ``g * v / ||v||`` of a ``weight_norm(module, dim=dim)`` pair."""
    return v * (g / norm_except_dim(v, dim))
