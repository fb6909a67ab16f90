"""Per-channel unit text files: one utterance per line, space-separated units.

The channels of a dialogue live in parallel files (``train.unitA``, ``train.unitB``) that
must have the same number of lines and the same number of units on each line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from dgslm.errors import DgslmError
from dgslm.fileio import atomic_write


def tokenize_line(line: str) -> list[str]:
    """fairseq's line tokeniser: whitespace runs collapse, ends are stripped."""
    return line.split()


def open_text(path: str | os.PathLike) -> IO[bytes]:
    """Open a text file for :func:`read_lines` (binary, so a decoding error names its line);
    a missing file is a DgslmError."""
    try:
        return open(Path(path), "rb")
    except OSError as err:
        raise DgslmError(f"cannot open: {err.strerror}", path) from None


def read_lines(handle: IO[bytes], path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield ``(line_no, line)`` of UTF-8 text counting from 1; bad UTF-8 is a DgslmError."""
    for line_no, raw in enumerate(handle, start=1):
        try:
            yield line_no, raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DgslmError(f"not UTF-8 text ({err.reason})", path, line_no) from None


def read_unit_file(path: str | os.PathLike) -> list[list[str]]:
    """All lines of a unit file, each split into its units."""
    with open_text(path) as handle:
        return [tokenize_line(line) for _, line in read_lines(handle, path)]


def write_unit_file(path: str | os.PathLike, lines: Sequence[Sequence[str] | str]) -> None:
    """Write one utterance per line (a unit list or a unit string), atomically."""
    with atomic_write(path) as handle:
        for units in lines:
            handle.write((units if isinstance(units, str) else " ".join(units)) + "\n")


def zip_lines(paths: Sequence[str | os.PathLike]) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_no, [line of file 0, line of file 1, ...])``; a file that ends before the
    others is a :class:`DgslmError` naming it and the line."""
    with ExitStack() as stack:
        readers = [read_lines(stack.enter_context(open_text(p)), p) for p in paths]
        line_no = 0
        while True:
            rows = [next(reader, None) for reader in readers]
            ended = [row is None for row in rows]
            if all(ended):
                return
            line_no += 1
            if any(ended):
                short = paths[ended.index(True)]
                longer = paths[ended.index(False)]
                raise DgslmError(f"has {line_no - 1} lines but {longer} has more", short, line_no)
            yield line_no, [row[1] for row in rows]


def iter_named_lines(paths: Sequence[str | os.PathLike]) -> Iterator[tuple[int, list[tuple[str, str]]]]:
    """Like :func:`zip_lines` for ``name|units`` lines: yields ``[(name, units), ...]``."""
    for line_no, lines in zip_lines(paths):
        named = []
        for path, line in zip(paths, lines):
            name, bar, units = line.strip().rpartition("|")
            if not bar:
                raise DgslmError("expected 'name|units'", path, line_no)
            named.append((name, units.strip()))
        yield line_no, named


def iter_parallel_lines(paths: Sequence[str | os.PathLike]) -> Iterator[tuple[int, list[list[str]]]]:
    """Yield ``(line_no, [units of channel 0, units of channel 1, ...])`` for parallel files.

    A :class:`DgslmError` names the file and line where a channel ends early or where the
    number of units differs from the first channel's.
    """
    for line_no, lines in zip_lines(paths):
        units = [tokenize_line(line) for line in lines]
        for path, channel_units in zip(paths[1:], units[1:]):
            if len(channel_units) != len(units[0]):
                raise DgslmError(
                    f"{len(channel_units)} units but {paths[0]} has {len(units[0])} on this line", path, line_no
                )
        yield line_no, units


def check_parallel(paths: Sequence[str | os.PathLike]) -> int:
    """Check that parallel channel files agree line by line; return the number of lines."""
    return sum(1 for _ in iter_parallel_lines(paths))
