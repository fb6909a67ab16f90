"""The SpeechDLM training data: per-channel token streams cut into shared blocks.

Each channel of a split (``{data}/{split}.{channel}.{bin,idx}``) is one stream of all its
lines, each ending with eos. The stream is cut into blocks (``--sample-break-mode``):

- ``none``: fixed ``tokens_per_sample`` slices of the stream (the last may be shorter);
- ``complete``: as many whole lines as fit in ``tokens_per_sample`` (a longer line alone);
- ``eos``: one line per block.

Block ``[s, e)`` has ``target = stream[s:e]`` and ``source = stream[s-1:e-1]`` (eos before the
stream's start). All channels share the block boundaries, so their lines must have equal
lengths. Items are read from the memory-mapped files on demand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dgslm.errors import DgslmError
from dgslm.lm.config import TaskConfig
from dgslm.lm.targets import run_targets
from dgslm.units.dictionary import Dictionary
from dgslm.units.indexed_dataset import IndexedDataset

BREAK_MODES = ("none", "complete", "eos")


def block_boundaries(sizes: np.ndarray, block_size: int, break_mode: str = "none") -> np.ndarray:
    """``(N, 2)`` start/end offsets in the concatenated stream of lines of ``sizes``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    ends = np.cumsum(sizes)
    total = int(ends[-1]) if len(ends) else 0
    if break_mode == "none":
        starts = np.arange(0, total, block_size, dtype=np.int64)
        return np.stack([starts, np.minimum(starts + block_size, total)], axis=1)
    if break_mode == "eos":
        return np.stack([ends - sizes, ends], axis=1)
    if break_mode == "complete":
        blocks, start, length = [], 0, 0
        for size in sizes.tolist():
            if length and length + size > block_size:
                blocks.append((start, start + length))
                start, length = start + length, 0
            length += size
        if length:
            blocks.append((start, start + length))
        return np.asarray(blocks, dtype=np.int64).reshape(-1, 2)
    raise DgslmError(f"unknown --sample-break-mode {break_mode!r} (choose from {', '.join(BREAK_MODES)})")


class TokenStream:
    """One channel's split read as a single token stream (memory-mapped lines)."""

    def __init__(self, lines: IndexedDataset):
        self.lines = lines
        self.sizes = np.asarray(lines.sizes, dtype=np.int64)
        self.line_ends = np.cumsum(self.sizes)

    def __len__(self) -> int:
        return int(self.line_ends[-1]) if len(self.line_ends) else 0

    def slice(self, start: int, end: int) -> torch.Tensor:
        """``stream[start:end]`` as int64."""
        first = int(np.searchsorted(self.line_ends, start, side="right"))
        last = int(np.searchsorted(self.line_ends, end - 1, side="right")) if end > start else first - 1
        parts = [self.lines[i] for i in range(first, last + 1)]
        if not parts:
            return torch.empty(0, dtype=torch.long)
        offset = start - int(self.line_ends[first] - self.sizes[first])
        return torch.cat(parts)[offset : offset + end - start].long()


def discover_channels(data: str | Path) -> tuple[str, ...]:
    """Sorted names ``X`` of the ``dict.X.txt`` files in ``data``."""
    names = sorted(p.name[len("dict.") : -len(".txt")] for p in Path(data).glob("dict.*.txt"))
    if not names:
        raise DgslmError("no dict.<channel>.txt files found", data)
    return tuple(names)


def load_dictionaries(data: str | Path, channels: tuple[str, ...]) -> dict[str, Dictionary]:
    """The per-channel dictionaries; they must agree on their special ids."""
    dicts = {}
    for channel in channels:
        path = Path(data) / f"dict.{channel}.txt"
        if not path.is_file():
            raise DgslmError(f"missing dictionary of channel {channel!r}", path)
        dicts[channel] = Dictionary.load(path)
    first = dicts[channels[0]]
    for channel, d in dicts.items():
        if (d.bos(), d.pad(), d.eos(), d.unk()) != (first.bos(), first.pad(), first.eos(), first.unk()):
            raise DgslmError(f"special ids of channel {channel!r} differ from {channels[0]!r}", data)
    return dicts


class SpeechDLMDataset(torch.utils.data.Dataset):
    """Blocks of all channels (``streams``, in channel order) with their next/edge/duration targets."""

    def __init__(self, streams: dict[str, TokenStream], cfg: TaskConfig, pad: int = 1, eos: int = 2, name: str = ""):
        self.cfg, self.pad, self.eos = cfg, pad, eos
        self.channels = tuple(streams)
        self.streams = [streams[c] for c in self.channels]
        reference = self.streams[0].sizes
        for channel, stream in zip(self.channels, self.streams):
            if not np.array_equal(stream.sizes, reference):
                raise DgslmError(
                    f"channel {channel!r} has different line lengths than {self.channels[0]!r}: "
                    "every line needs the same number of units in all channels",
                    name or None,
                )
        self.blocks = block_boundaries(reference, cfg.tokens_per_sample, cfg.sample_break_mode)
        self.sizes = (self.blocks[:, 1] - self.blocks[:, 0]).astype(np.int64)

    @classmethod
    def load(
        cls,
        data: str | Path,
        split: str,
        channels: tuple[str, ...],
        cfg: TaskConfig,
        pad: int = 1,
        eos: int = 2,
        vocab_size: int | None = None,
    ) -> SpeechDLMDataset:
        """The split's ``.bin``/``.idx`` pair of each channel; with ``vocab_size`` every token is checked."""
        streams = {}
        for channel in channels:
            prefix = Path(data) / f"{split}.{channel}"
            if not Path(f"{prefix}.idx").is_file() or not Path(f"{prefix}.bin").is_file():
                raise DgslmError(f"missing {split} data of channel {channel!r} ({prefix}.bin/.idx)", data)
            lines = IndexedDataset(str(prefix))
            if vocab_size is not None:
                lines.check_tokens(vocab_size)
            streams[channel] = TokenStream(lines)
        return cls(streams, cfg, pad=pad, eos=eos, name=str(Path(data) / split))

    def __len__(self) -> int:
        return len(self.blocks)

    def _target(self, stream: TokenStream, index: int) -> torch.Tensor:
        start, end = self.blocks[index]
        return stream.slice(int(start), int(end))

    def __getitem__(self, index: int) -> dict:
        start, end = (int(v) for v in self.blocks[index])
        item = {"id": index, "source": [], "next": [], "edge": [], "duration": [], "edge_indices": []}
        for stream in self.streams:
            target = stream.slice(start, end)
            before = stream.slice(start - 1, start) if start > 0 else torch.tensor([self.eos])
            item["source"].append(torch.cat([before, target[:-1]]))
            item["next"].append(target)
            following = self._target(stream, index + 1) if index + 1 < len(self) else None
            runs = run_targets(target, following, self.pad, self.cfg.max_target_durations)
            item["edge"].append(runs.edge)
            item["duration"].append(runs.duration)
            item["edge_indices"].append(runs.edge_indices)
        return item


def collate(items: list[dict], pad: int = 1) -> dict:
    """Batch of blocks: ``src_tokens``/``next`` (B, C, T) right-padded; per channel, the
    edge/duration targets concatenated and ``edge_indices`` offset by ``row * T`` so they
    index the flattened ``B*T`` positions; ``lengths`` (B,) real block lengths."""
    lengths = torch.tensor([len(item["source"][0]) for item in items], dtype=torch.long)
    batch_size, channels, width = len(items), len(items[0]["source"]), int(lengths.max())
    src = torch.full((batch_size, channels, width), pad, dtype=torch.long)
    nxt = torch.full((batch_size, channels, width), pad, dtype=torch.long)
    for row, item in enumerate(items):
        for c in range(channels):
            src[row, c, : lengths[row]] = item["source"][c]
            nxt[row, c, : lengths[row]] = item["next"][c]
    concat = lambda key, c: torch.cat([item[key][c] for item in items])  # noqa: E731
    return {
        "id": torch.tensor([item["id"] for item in items], dtype=torch.long),
        "src_tokens": src,
        "lengths": lengths,
        "nsentences": batch_size,
        "ntokens": int(lengths.sum()) * channels,
        "target": {
            "next": nxt,
            "edge": [concat("edge", c) for c in range(channels)],
            "duration": [concat("duration", c) for c in range(channels)],
            "edge_indices": [
                torch.cat([item["edge_indices"][c] + row * width for row, item in enumerate(items)])
                for c in range(channels)
            ],
        },
    }
