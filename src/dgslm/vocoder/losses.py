"""HiFi-GAN training losses: least-squares GAN, feature matching, and the unit-run duration loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dgslm.vocoder.discriminators import FeatureMaps, Scores


def discriminator_loss(real: Scores, fake: Scores) -> torch.Tensor:
    """Σ mean((1 - D(y))²) + mean(D(ŷ)²) over the sub-discriminators."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(g**2) for r, g in zip(real, fake))


def generator_adversarial_loss(fake: Scores) -> torch.Tensor:
    """Σ mean((1 - D(ŷ))²) over the sub-discriminators."""
    return sum(torch.mean((1 - g) ** 2) for g in fake)


def feature_matching_loss(real: FeatureMaps, fake: FeatureMaps) -> torch.Tensor:
    """2 × Σ over every feature map of mean |f(y) - f(ŷ)| (real maps are targets)."""
    return 2 * sum(
        torch.mean(torch.abs(r.detach() - g)) for maps_r, maps_g in zip(real, fake) for r, g in zip(maps_r, maps_g)
    )


def run_lengths(code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Runs of equal consecutive units in a [U] sequence, without the first and last runs (they
    may be cut by the segment): (unit of each run, its length)."""
    _, counts = torch.unique_consecutive(code, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    return code[starts][1:-1], counts[1:-1]


def duration_loss(predictor: torch.nn.Module, embed: torch.nn.Module, code: torch.Tensor) -> torch.Tensor:
    """MSE between predicted log-durations and log(run length + 1) on the deduplicated runs of
    each row of ``code`` [B, U] (the speech-resynthesis duration target)."""
    preds, targets = [], []
    for row in code:
        units, counts = run_lengths(row)
        if units.numel():
            preds.append(predictor(embed(units[None]))[0])
            targets.append(torch.log(counts.float() + 1))
    if not preds:  # no complete run in any row: a zero that still touches every parameter (DDP)
        return 0 * predictor(embed(code[:, :1])).abs().sum()
    return F.mse_loss(torch.cat(preds), torch.cat(targets))
