"""Run-length targets of a block: edge units, their durations and where the runs start.

A SpeechDLM is trained, per channel, to predict the unit of every new run ("edge") and how
many frames the run lasts ("duration"). For a block ``target`` of units:

- ``edge``: the run values, ``unique_consecutive(target)``;
- ``edge_indices``: the start offset of each run inside the block (the block's first
  position is always an edge, even when it continues the previous block's last run);
- ``duration``: the run lengths, where the last run is continued into the next block's
  leading equal units (``max_target_durations`` caps both the continuation and every value).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RunTargets:
    """Run-length view of one block's target sequence."""

    edge: torch.Tensor  # (K,) run values
    duration: torch.Tensor  # (K,) run lengths (continued and capped)
    edge_indices: torch.Tensor  # (K,) start offsets of the runs in the block


def run_targets(
    target: torch.Tensor,
    next_target: torch.Tensor | None,
    pad: int,
    max_target_durations: int | None = 256,
) -> RunTargets:
    """Edge, duration and run-start targets of ``target`` (1-D).

    ``next_target`` is the following block's target (None for the dataset's last block): the
    last run's duration counts its leading units equal to the run's value. A value of
    ``max_target_durations`` that is None or <= 0 means no cap. Unlike the original, the
    continuation stops at the end of ``next_target`` instead of raising IndexError.
    """
    edge, duration = torch.unique_consecutive(target, return_counts=True)
    starts = torch.cumsum(duration, 0) - duration
    if len(edge) and edge[-1].item() == pad:  # a trailing pad run is no target
        edge, duration, starts = edge[:-1], duration[:-1], starts[:-1]
    cap = max_target_durations if max_target_durations and max_target_durations > 0 else None
    if len(edge) and next_target is not None and next_target.numel():
        limit = len(next_target) if cap is None else max(0, min(len(next_target), cap - int(duration[-1])))
        head = next_target[:limit]
        different = (head != edge[-1]).nonzero()
        extra = int(different[0]) if len(different) else len(head)
        duration = duration.clone()
        duration[-1] += extra
    if cap is not None:
        duration = duration.clamp(max=cap)
    return RunTargets(edge=edge, duration=duration, edge_indices=starts)
