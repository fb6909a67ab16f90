"""Validation of a SpeechDLM on a binarised split (the original's ``fairseq-validate``)."""

from __future__ import annotations

import functools
import time
from collections import defaultdict

import numpy as np
import torch

from dgslm.lm.batching import batch_by_size, epoch_batches, ordered_indices
from dgslm.lm.config import CriterionConfig
from dgslm.lm.criterion import SpeechDLMCriterion, reduce_metrics
from dgslm.lm.dataset import SpeechDLMDataset, collate
from dgslm.training import distributed


def batch_to(batch: dict, device: torch.device) -> dict:
    """Move every tensor of a collated batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: batch_to(v, device) for k, v in batch.items()}
    if isinstance(batch, list):
        return [batch_to(v, device) for v in batch]
    return batch


def make_loader(
    dataset: SpeechDLMDataset, batches: list, num_workers: int = 0, pin_memory: bool = False
) -> torch.utils.data.DataLoader:
    """A DataLoader of collated ``batches`` (lists of block indices, in order); its own RNG
    generator keeps the global torch RNG (dropout) untouched."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=[[int(i) for i in b] for b in batches],
        collate_fn=functools.partial(collate, pad=dataset.pad),
        num_workers=num_workers,
        generator=torch.Generator(),
        pin_memory=pin_memory,
    )


def validation_batches(
    dataset: SpeechDLMDataset, max_tokens: int | None, max_sentences: int | None = None,
    seed: int = 1, required_batch_size_multiple: int = 8, skip_invalid_size: bool = False,
) -> list[np.ndarray]:  # fmt: skip
    """All batches of a validation pass, in the original's order (``skip_invalid_size``:
    leave out blocks longer than ``max_tokens`` instead of failing)."""
    order = ordered_indices(dataset.sizes, seed)
    if skip_invalid_size and max_tokens:
        order = order[dataset.sizes[order] <= max_tokens]
    return batch_by_size(order, dataset.sizes, max_tokens, max_sentences, required_batch_size_multiple)


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    dataset: SpeechDLMDataset,
    criterion_cfg: CriterionConfig,
    max_tokens: int | None = 6144,
    max_sentences: int | None = None,
    seed: int = 1,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    autocast_dtype: torch.dtype | None = None,
    required_batch_size_multiple: int = 8,
    skip_invalid_size: bool = False,
    progress=None,
) -> tuple[dict[str, float], dict[str, float]]:
    """Run the model over the split; return ``(metrics, summed logging outputs)``.

    Under torchrun each rank validates its share of the batches and the sums are all-reduced.
    """
    device = torch.device(device)
    criterion = SpeechDLMCriterion(criterion_cfg, model.cfg)
    batches = validation_batches(
        dataset, max_tokens, max_sentences, seed, required_batch_size_multiple, skip_invalid_size
    )
    # this rank's share, padded with None so that every rank runs (and all-reduces) alike
    shard = epoch_batches(batches, 0, seed, distributed.rank(), distributed.world_size(), shuffle=False)
    dummy = [b is None for b in shard]
    batches = [batches[0] if b is None else b for b in shard]
    was_training = model.training
    model.eval()
    sums: dict[str, float] = defaultdict(float)
    start = time.perf_counter()
    loader = make_loader(dataset, batches, num_workers)
    if progress is not None:
        loader = progress(loader, total=len(batches), desc="valid")
    for batch, is_dummy in zip(loader, dummy):
        batch = batch_to(batch, device)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            output = model(batch["src_tokens"])
        _, _, log = criterion(output, batch)
        for key, value in log.items():
            sums[key] += 0.0 if is_dummy else value
    model.train(was_training)
    sums = distributed.all_reduce_dict(dict(sums), device)
    metrics = reduce_metrics(sums, criterion.targets, seconds=time.perf_counter() - start)
    return metrics, sums
