"""Which audio files a job reads: files, folders (recursive, by extension) and wav2vec-style
manifests (first line: root folder; then ``relative/path<TAB>num_samples`` per line)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dgslm.audio import AUDIO_EXTENSIONS
from dgslm.errors import DgslmError
from dgslm.units.unit_files import open_text, read_lines

MANIFEST_EXTENSIONS = (".tsv",)


@dataclass(frozen=True)
class AudioItem:
    path: Path
    source: Path | None = None  # the manifest naming it, for error messages
    line: int | None = None

    @property
    def name(self) -> str:
        """The file name without its extension (a real suffix removal, unlike the original's
        character-set strip that turned ``cat.wav`` into ``c``)."""
        return self.path.name[: -len(self.path.suffix)] if self.path.suffix else self.path.name

    def error(self, message: str) -> DgslmError:
        if self.source is not None:
            return DgslmError(f"{self.path}: {message}", self.source, self.line)
        return DgslmError(message, self.path)


def read_manifest(path: str | os.PathLike) -> list[AudioItem]:
    """The files a manifest names, relative to its first line; a missing file is an error
    naming the manifest line."""
    items: list[AudioItem] = []
    root: Path | None = None
    with open_text(path) as handle:
        for line_no, line in read_lines(handle, path):
            line = line.rstrip("\n")
            if root is None:
                root = Path(line.strip())
                continue
            if not line.strip():
                continue
            relative = line.split("\t")[0]
            items.append(AudioItem(root / relative, Path(path), line_no))
    if root is None:
        raise DgslmError("empty manifest (the first line must be the root folder)", path)
    return items


def find_audio(inputs: Sequence[str | os.PathLike], extensions: Sequence[str] = AUDIO_EXTENSIONS) -> list[AudioItem]:
    """Expand files, folders and manifests into audio items, in a stable order; file names
    (without extension) must be unique because they name the outputs."""
    wanted = {"." + e.lower().lstrip(".") for e in extensions}
    items: list[AudioItem] = []
    for entry in map(Path, inputs):
        if entry.is_dir():
            found = sorted(p for p in entry.rglob("*") if p.suffix.lower() in wanted and p.is_file())
            if not found:
                raise DgslmError(f"no audio files ({', '.join(sorted(wanted))}) in this folder", entry)
            items += [AudioItem(p) for p in found]
        elif entry.suffix.lower() in MANIFEST_EXTENSIONS:
            items += read_manifest(entry)
        elif entry.exists():
            items.append(AudioItem(entry))
        else:
            raise DgslmError("no such file or folder", entry)
    seen: dict[str, AudioItem] = {}
    for item in items:
        if item.name in seen:
            raise DgslmError(
                f"two inputs are named {item.name!r} ({seen[item.name].path} and {item.path}); "
                "names label the output lines and must be unique",
                item.path,
            )
        seen[item.name] = item
    return items


def shard(items: Sequence[AudioItem], shard_id: int, num_shards: int) -> list[AudioItem]:
    """Contiguous shard ``shard_id`` of ``num_shards``, as the original scripts split manifests."""
    if not 0 <= shard_id < num_shards:
        raise DgslmError(f"--shard-id must be in 0..{num_shards - 1}, got {shard_id}")
    start, end = len(items) * shard_id // num_shards, len(items) * (shard_id + 1) // num_shards
    return list(items[start:end])
