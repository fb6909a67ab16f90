"""The project's one error type: a clear, one-line message naming the file and the problem."""

from __future__ import annotations

from os import PathLike


class DgslmError(Exception):
    """A user-facing error. The CLI prints ``dgslm: error: <message>`` and exits non-zero."""

    def __init__(self, message: str, path: str | PathLike | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f":{line}"
            where += ": "
        super().__init__(" ".join(f"{where}{message}".split()))  # always one line
        self.path = path
        self.line = line
