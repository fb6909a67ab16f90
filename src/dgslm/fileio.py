"""Atomic file output: write to a temporary file (or folder) beside the target, then rename.

* The temporary file is created with the mode a plain ``open()`` would give (the kernel applies
  the umask: no process-wide ``os.umask`` toggle, so threads may write at once); rewriting an
  existing file keeps its permissions.
* A symlinked destination is written through: the file (folder) it points to is replaced and
  the link keeps pointing at the new content.
* On any exception, and on SIGTERM, the temporary files are removed.
* A folder is swapped in by two renames (old -> backup, new -> name), then the backup is
  removed: a crash at any moment leaves the old or the new folder in place (and a hidden
  backup or temporary folder beside it), never neither.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_live: set[str] = set()  # temporary paths of writes in progress (any thread)
_live_lock = threading.Lock()
_handler_installed = False


def _on_sigterm(signum: int, frame: object) -> None:
    """Remove the temporary files and folders of unfinished writes, then die of the signal."""
    with _live_lock:
        paths = list(_live)
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm_cleanup() -> None:
    """Install :func:`_on_sigterm` once, from the main thread, unless the program has its own handler."""
    global _handler_installed
    if _handler_installed or threading.current_thread() is not threading.main_thread():
        return
    _handler_installed = True
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)


@contextlib.contextmanager
def _tracked(path: str) -> Iterator[None]:
    with _live_lock:
        _live.add(path)
    try:
        yield
    finally:
        with _live_lock:
            _live.discard(path)


def _destination(path: str | os.PathLike) -> Path:
    """``path``, or what it points to when it is a symlink (written through)."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _temporary_name(path: Path, kind: str) -> Path:
    """A hidden name beside ``path``, short enough for any name that fits the file system."""
    return path.parent / f".{path.name[:60]}.{secrets.token_hex(4)}.{kind}{path.suffix[:16]}"


def _keep_mode(tmp: str | os.PathLike, old: Path) -> None:
    """Give ``tmp`` the permissions of the file it replaces, if any."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(tmp, stat.S_IMODE(os.stat(old).st_mode))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for libraries that write by file name
    (``torch.save``, ``soundfile.write``, ``safetensors``); rename it over ``path`` on success.

    On any exception (or SIGTERM) the temporary file is removed and ``path`` is left untouched,
    so a crash never leaves a half-written output. The parent folder is created if needed
    (a bare file name means the current folder).
    """
    path = _destination(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _install_sigterm_cleanup()
    while True:
        tmp = _temporary_name(path, "tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # the umask applies
            break
        except FileExistsError:
            continue
    with _tracked(str(tmp)):
        try:
            yield tmp
            _keep_mode(tmp, path)
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
    ``folder`` by two renames (see the module), on any exception (or SIGTERM) it is removed."""
    folder = _destination(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    _install_sigterm_cleanup()
    tmp = _temporary_name(folder, "tmp")
    os.mkdir(tmp, 0o777)  # the umask applies
    with _tracked(str(tmp)):
        try:
            yield tmp
            _keep_mode(tmp, folder)
            backup = _temporary_name(folder, "old") if folder.exists() else None
            if backup is not None:
                os.rename(folder, backup)
            try:
                os.rename(tmp, folder)
            except BaseException:
                if backup is not None:
                    os.rename(backup, folder)
                raise
            if backup is not None:
                shutil.rmtree(backup)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def concatenate(parts: list[Path], path: str | os.PathLike) -> None:
    """Write the bytes of ``parts``, in order, to ``path`` atomically."""
    with atomic_write(path, "wb") as handle:
        for part in parts:
            with open(part, "rb") as source:
                shutil.copyfileobj(source, handle, 1 << 20)


def tagged_path(path: str | os.PathLike, tag: str) -> Path:
    """A sibling of ``path`` for one part of a job: ``<stem>.<tag><suffix>``, or ``<name>-<tag>``
    for a name without a suffix, so that it keeps none (a tag read as a suffix would give every
    part the same ``<stem>.<channel>`` files beside it)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.{tag}{path.suffix}" if path.suffix else f"{path.name}-{tag}")
