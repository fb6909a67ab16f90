"""Unit text files to fairseq mmap datasets, as ``fairseq-preprocess --only-source`` does.

Every line becomes its unit ids followed by eos; units missing from the dictionary become
``<unk>`` and are counted as replaced. Lines are encoded in chunks, optionally by a pool of
worker processes; chunks are written in order, so the output never depends on the workers.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from dgslm.fileio import atomic_path
from dgslm.units.dictionary import EOS_ID, UNK, UNK_ID, Dictionary
from dgslm.units.indexed_dataset import IndexedDatasetWriter, best_fitting_dtype
from dgslm.units.unit_files import open_text, read_lines

CHUNK_LINES = 4096
WINDOW_CHUNKS = 32  # chunks handed to the pool at a time


@dataclass
class BinarizeStats:
    """What fairseq-preprocess reports per file."""

    sentences: int = 0
    tokens: int = 0  # eos included
    replaced: int = 0  # units mapped to <unk> (a literal <unk> is not counted)

    @property
    def replaced_percent(self) -> float:
        return 100.0 * self.replaced / self.tokens if self.tokens else 0.0


_indices: dict[str, int] = {}


def _set_indices(indices: dict[str, int]) -> None:
    global _indices
    _indices = indices


def encode_chunk(lines: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """Encode lines with the worker's dictionary: (flat ids, sizes, replaced count)."""
    flat: list[int] = []
    sizes = np.empty(len(lines), dtype=np.int64)
    replaced = 0
    for i, line in enumerate(lines):
        units = line.split()
        ids = [_indices.get(u, UNK_ID) for u in units]
        if UNK_ID in ids:
            replaced += sum(1 for u, j in zip(units, ids) if j == UNK_ID and u != UNK)
        ids.append(EOS_ID)
        flat.extend(ids)
        sizes[i] = len(ids)
    return np.asarray(flat, dtype=np.int64), sizes, replaced


def _chunks(path: str | os.PathLike) -> Iterator[list[str]]:
    with open_text(path) as handle:
        lines = (line for _, line in read_lines(handle, path))
        while chunk := list(itertools.islice(lines, CHUNK_LINES)):
            yield chunk


def _pool_map(pool: multiprocessing.pool.Pool, chunks: Iterator[list[str]]) -> Iterator[tuple]:
    """``encode_chunk`` over the chunks in order, reading only a few chunks ahead."""
    while batch := list(itertools.islice(chunks, WINDOW_CHUNKS)):
        yield from pool.map(encode_chunk, batch)


def binarize_file(
    text_path: str | os.PathLike,
    prefix: str | os.PathLike,
    dictionary: Dictionary,
    pool: multiprocessing.pool.Pool | None = None,
) -> BinarizeStats:
    """Encode ``text_path`` into ``{prefix}.bin/.idx`` (atomically) and return its statistics."""
    writer = IndexedDatasetWriter(best_fitting_dtype(len(dictionary)))
    stats = BinarizeStats()
    if pool is None:
        _set_indices(dictionary.indices)
        encoded = map(encode_chunk, _chunks(text_path))
    else:
        encoded = _pool_map(pool, _chunks(text_path))
    with atomic_path(str(prefix) + ".bin") as bin_tmp, atomic_path(str(prefix) + ".idx") as idx_tmp:
        with open(bin_tmp, "wb") as handle:
            for flat, sizes, replaced in encoded:
                writer.add_many(handle, flat, sizes)
                stats.sentences += len(sizes)
                stats.tokens += len(flat)
                stats.replaced += replaced
        writer.write_index(idx_tmp)
    return stats


def make_pool(dictionary: Dictionary, workers: int) -> multiprocessing.pool.Pool | None:
    """A worker pool holding the dictionary, or None for ``workers <= 1``."""
    if workers <= 1:
        return None
    return multiprocessing.Pool(workers, initializer=_set_indices, initargs=(dictionary.indices,))
