"""Atomic file output: write to a temporary file (or folder) beside the target, then rename."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _default_mode(folder: bool = False) -> int:
    """The mode a plain ``open()`` (or ``mkdir``) would give a new file (folder); ``mkstemp``
    and ``mkdtemp`` make them private."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if folder else 0o666) & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for libraries that write by file name
    (``torch.save``, ``soundfile.write``, ``safetensors``); rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched, so a
    crash never leaves a half-written output. The parent folder is created if needed
    (a bare file name means the current folder).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a file object that lands at ``path`` only when the block succeeds (see ``atomic_path``)."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``folder`` to fill with files; on success it replaces
    ``folder`` (an existing one is removed first), on any exception it is removed."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        yield tmp
        tmp.chmod(_default_mode(folder=True))
        for path in tmp.iterdir():
            path.chmod(_default_mode(folder=path.is_dir()))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def concatenate(parts: list[Path], path: str | os.PathLike) -> None:
    """Write the bytes of ``parts``, in order, to ``path`` atomically."""
    with atomic_write(path, "wb") as handle:
        for part in parts:
            with open(part, "rb") as source:
                shutil.copyfileobj(source, handle, 1 << 20)
