"""Batch composition and order, as the original's fairseq iterators make them.

1. ``ordered_indices``: blocks sorted by size, ties in the order of a permutation drawn from
   ``np.random.RandomState(seed + epoch)``, epoch 1 (the short final block first). The
   original's validation with ``--seed 1`` orders the reference's 8 blocks ``[7, 1, 3, 4, 0,
   6, 2, 5]``, which is the permutation of seed 2, not 1 as spec D7 says.
2. ``batch_by_size``: consecutive blocks grouped while ``rows * longest <= max_tokens`` (and
   ``rows <= max_sentences``); a full batch keeps a multiple of ``required_batch_size_multiple``
   rows when it has more than that many, the rest opens the next batch.
3. ``epoch_batches``: training shuffles the batch list with seed ``seed + epoch`` and gives
   rank ``r`` of ``w`` the batches ``r, r + w, ...`` (padded with ``None`` to equal counts).
"""

from __future__ import annotations

import numpy as np

from dgslm.errors import DgslmError


def ordered_indices(sizes: np.ndarray, seed: int, shuffle: bool = True, epoch: int = 1) -> np.ndarray:
    """Block indices sorted by size, ties broken by a seeded permutation (or index order)."""
    tie = np.random.RandomState(seed + epoch).permutation(len(sizes)) if shuffle else np.arange(len(sizes))
    return np.lexsort((tie, np.asarray(sizes)))


def batch_by_size(
    indices: np.ndarray,
    sizes: np.ndarray,
    max_tokens: int | None,
    max_sentences: int | None = None,
    required_batch_size_multiple: int = 8,
) -> list[np.ndarray]:
    """Group ``indices`` (in order) into batches bounded by padded tokens and rows."""
    max_tokens = max_tokens or 0
    max_sentences = max_sentences or 0
    mult = max(1, required_batch_size_multiple)
    batches: list[np.ndarray] = []
    current: list[int] = []
    longest = 0
    for index in indices.tolist():
        size = int(sizes[index])
        if max_tokens and size > max_tokens:
            raise DgslmError(f"block {index} has {size} tokens, more than --max-tokens {max_tokens}")
        grown = max(longest, size)
        if current and (
            (max_tokens and grown * (len(current) + 1) > max_tokens)
            or (max_sentences and len(current) + 1 > max_sentences)
        ):
            keep = len(current) if len(current) < mult else len(current) - len(current) % mult
            batches.append(np.asarray(current[:keep], dtype=np.int64))
            current = current[keep:]
            longest = max((int(sizes[i]) for i in current), default=0)
            grown = max(longest, size)
        current.append(index)
        longest = grown
    if current:
        batches.append(np.asarray(current, dtype=np.int64))
    return batches


def epoch_batches(
    batches: list[np.ndarray], epoch: int, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True
) -> list[np.ndarray | None]:
    """This rank's batches of ``epoch`` (1-based): shuffled, then sharded round-robin.

    Shards are padded with None so that every rank runs the same number of steps."""
    order = list(batches)
    if shuffle:
        np.random.RandomState(seed + epoch).shuffle(order)
    shard: list[np.ndarray | None] = order[rank::world_size]
    per_rank = -(-len(order) // world_size)
    return shard + [None] * (per_rank - len(shard))
