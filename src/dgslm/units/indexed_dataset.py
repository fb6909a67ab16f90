"""fairseq's memory-mapped indexed dataset (``MMIDIDX``): a ``.bin`` of tokens and an ``.idx``.

``.idx`` layout (little-endian): magic ``MMIDIDX\\0\\0``, u64 version 1, u8 dtype code, u64 N,
int32 sizes[N] (tokens per sequence, eos included), int64 byte pointers[N] into ``.bin``.
``.bin`` is the plain concatenation of the sequences in that dtype.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from dgslm.errors import DgslmError
from dgslm.fileio import atomic_path

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
HEADER = struct.Struct("<9sQBQ")  # magic, version, dtype code, number of sequences
DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.uint8),
    2: np.dtype(np.int8),
    3: np.dtype(np.int16),
    4: np.dtype(np.int32),
    5: np.dtype(np.int64),
    6: np.dtype(np.float64),
    7: np.dtype(np.double),
    8: np.dtype(np.uint16),
    9: np.dtype(np.uint32),
    10: np.dtype(np.uint64),
}
CODES = {np.dtype(np.uint8): 1, np.dtype(np.int8): 2, np.dtype(np.int16): 3, np.dtype(np.int32): 4,
         np.dtype(np.int64): 5, np.dtype(np.float64): 6, np.dtype(np.uint16): 8,
         np.dtype(np.uint32): 9, np.dtype(np.uint64): 10}  # fmt: skip


def best_fitting_dtype(vocab_size: int | None) -> np.dtype:
    """The token dtype fairseq picks for a vocabulary size."""
    if vocab_size is None:
        return np.dtype(np.uint32)
    if vocab_size < 65500:
        return np.dtype(np.uint16)
    if vocab_size < 4294967295:
        return np.dtype(np.uint32)
    return np.dtype(np.int64)


class IndexedDataset:
    """Random access to ``{prefix}.bin`` / ``{prefix}.idx``; ``ds[i]`` is an int64 LongTensor."""

    def __init__(self, prefix: str | os.PathLike):
        self.prefix = str(prefix)
        idx_path, bin_path = Path(self.prefix + ".idx"), Path(self.prefix + ".bin")
        self.dtype, self.sizes, self.pointers = read_index(idx_path)
        try:
            data_bytes = bin_path.stat().st_size
        except OSError as err:
            raise DgslmError(f"cannot open: {err.strerror}", bin_path) from None
        if len(self.sizes):
            if self.sizes.min() < 0:
                raise DgslmError("negative sequence size in index", idx_path)
            if self.pointers.min() < 0 or self.pointers.max() > data_bytes:
                raise DgslmError(f"index points past the end of {bin_path} ({data_bytes} bytes)", idx_path)
            ends = self.pointers + self.sizes.astype(np.int64) * self.dtype.itemsize
            if ends.max() > data_bytes:
                raise DgslmError(f"index points past the end of {bin_path} ({data_bytes} bytes)", idx_path)
        # an empty file cannot be memory-mapped
        self._data = np.memmap(bin_path, dtype=np.uint8, mode="r") if data_bytes else np.zeros(0, np.uint8)

    def check_tokens(self, vocab_size: int) -> None:
        """DgslmError naming the ``.bin`` file unless every token is in ``[0, vocab_size)``."""
        usable = len(self._data) - len(self._data) % self.dtype.itemsize
        tokens = self._data[:usable].view(self.dtype)
        if len(tokens) and (tokens.min() < 0 or tokens.max() >= vocab_size):
            bad = int(tokens.max()) if tokens.max() >= vocab_size else int(tokens.min())
            raise DgslmError(f"token {bad} is outside the dictionary's {vocab_size} entries", self.prefix + ".bin")

    def __getstate__(self) -> str:  # pickled (DataLoader workers) by prefix, not by content
        return self.prefix

    def __setstate__(self, prefix: str) -> None:
        self.__init__(prefix)

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, index: int) -> torch.Tensor:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} sequences")
        start = int(self.pointers[index])
        stop = start + int(self.sizes[index]) * self.dtype.itemsize
        return torch.from_numpy(self._data[start:stop].view(self.dtype).astype(np.int64))

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def read_index(path: str | os.PathLike) -> tuple[np.dtype, np.ndarray, np.ndarray]:
    """Parse an ``.idx`` file into ``(dtype, sizes int32[N], pointers int64[N])``."""
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise DgslmError(f"cannot open: {err.strerror}", path) from None
    if len(raw) < HEADER.size:
        raise DgslmError(f"truncated index: {len(raw)} bytes, the header alone is {HEADER.size}", path)
    magic, version, code, count = HEADER.unpack_from(raw)
    if magic.startswith(b"TNTIDX\x00\x00"):
        raise DgslmError("legacy fairseq 'cached'/'lazy' index: binarise again with dgslm preprocess", path)
    if magic != MAGIC:
        raise DgslmError(f"not a fairseq mmap index (magic {magic!r}, expected {MAGIC!r})", path)
    if version != VERSION:
        raise DgslmError(f"unsupported index version {version}", path)
    if code not in DTYPES:
        raise DgslmError(f"unknown dtype code {code}", path)
    expected = HEADER.size + 12 * count
    if len(raw) != expected:
        raise DgslmError(f"index is {len(raw)} bytes, {count} sequences need {expected}", path)
    sizes = np.frombuffer(raw, dtype="<i4", count=count, offset=HEADER.size)
    pointers = np.frombuffer(raw, dtype="<i8", count=count, offset=HEADER.size + 4 * count)
    return DTYPES[code], sizes, pointers


def write_indexed_dataset(
    prefix: str | os.PathLike, sequences: Iterable[Sequence[int] | np.ndarray | torch.Tensor], vocab_size: int | None
) -> None:
    """Write ``{prefix}.bin`` and ``{prefix}.idx`` atomically, byte-identical to fairseq."""
    dtype = best_fitting_dtype(vocab_size)
    writer = IndexedDatasetWriter(dtype)
    with atomic_path(str(prefix) + ".bin") as bin_tmp, atomic_path(str(prefix) + ".idx") as idx_tmp:
        with open(bin_tmp, "wb") as handle:
            for sequence in sequences:
                writer.add(handle, sequence)
        writer.write_index(idx_tmp)


class IndexedDatasetWriter:
    """Appends sequences to an open ``.bin`` handle and remembers their sizes for the index."""

    def __init__(self, dtype: np.dtype):
        self.dtype = np.dtype(dtype)
        self.sizes: list[int] = []

    def add(self, handle, sequence: Sequence[int] | np.ndarray | torch.Tensor) -> None:
        if isinstance(sequence, torch.Tensor):
            sequence = sequence.numpy()
        array = np.asarray(sequence, dtype=self.dtype.newbyteorder("<"))
        handle.write(array.tobytes(order="C"))
        self.sizes.append(array.size)

    def add_many(self, handle, flat: np.ndarray, sizes: np.ndarray) -> None:
        """Append several sequences given as one flat token array and their sizes."""
        handle.write(np.ascontiguousarray(flat, dtype=self.dtype.newbyteorder("<")).tobytes())
        self.sizes.extend(int(s) for s in sizes)

    def write_index(self, path: str | os.PathLike) -> None:
        sizes = np.asarray(self.sizes, dtype="<i4")
        pointers = np.zeros(len(sizes), dtype="<i8")
        if len(sizes) > 1:
            np.cumsum(sizes[:-1].astype(np.int64) * self.dtype.itemsize, out=pointers[1:])
        with open(path, "wb") as handle:
            handle.write(HEADER.pack(MAGIC, VERSION, CODES[self.dtype], len(sizes)))
            handle.write(sizes.tobytes())
            handle.write(pointers.tobytes())
