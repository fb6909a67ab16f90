"""Code files: one utterance per line as a dict of strings, e.g.
``{'audio': 'file_1', 'unitA': '8 8 352', 'unitB': '217 8 8'}``.

The original scripts write Python ``str(dict)`` lines and read them with ``ast.literal_eval``;
we read them with a small strict parser (only string keys and string values, nothing is
ever evaluated) and also accept JSON lines. The format is detected per line; blank lines
are skipped.
"""

from __future__ import annotations

import ast
import json
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping

from dgslm.errors import DgslmError
from dgslm.fileio import atomic_write
from dgslm.units.unit_files import open_text, read_lines

FORMATS = ("python", "jsonl")

_SPACE = re.compile(r"\s*")
_STRING = re.compile(r"""[uU]?('(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")""", re.DOTALL)


class _ParseError(ValueError):
    pass


def _string_literal(text: str, pos: int) -> tuple[str, int]:
    """A Python string literal at ``pos``: its value and the position after it."""
    match = _STRING.match(text, pos)
    if match is None:
        raise _ParseError(f"expected a quoted string at column {pos + 1}")
    literal = match.group(1)
    if "\\" not in literal:
        return literal[1:-1], match.end()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes such as '\d' only warn
            value = ast.literal_eval(literal)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        raise _ParseError(f"bad string literal at column {pos + 1}") from None
    return value, match.end()


def parse_python_dict(text: str) -> dict[str, str]:
    """Parse ``{'key': 'value', ...}`` (a Python dict literal of strings) without evaluating it."""

    def skip(pos: int) -> int:
        return _SPACE.match(text, pos).end()

    pos = skip(0)
    if not text.startswith("{", pos):
        raise _ParseError("expected '{'")
    pos = skip(pos + 1)
    record: dict[str, str] = {}
    while not text.startswith("}", pos):
        key, pos = _string_literal(text, pos)
        pos = skip(pos)
        if not text.startswith(":", pos):
            raise _ParseError(f"expected ':' at column {pos + 1}")
        value, pos = _string_literal(text, skip(pos + 1))
        if key in record:
            raise _ParseError(f"duplicate key {key!r}")
        record[key] = value
        pos = skip(pos)
        if text.startswith(",", pos):
            pos = skip(pos + 1)
        elif not text.startswith("}", pos):
            raise _ParseError(f"expected ',' or '}}' at column {pos + 1}")
    if skip(pos + 1) != len(text):
        raise _ParseError(f"unexpected text after '}}' at column {pos + 2}")
    return record


def parse_code_line(line: str) -> dict[str, str]:
    """One code-file line (JSON object or Python dict literal) to a ``{str: str}`` dict."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return parse_python_dict(line)
    if not isinstance(record, dict) or not all(isinstance(v, str) for v in record.values()):
        raise _ParseError("expected an object of string keys and string values")
    return record


def iter_code_file(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, record)`` of every non-blank line; a line that is not a dict of strings
    is a DgslmError naming file:line."""
    with open_text(path) as handle:
        for line_no, line in read_lines(handle, path):
            if not line.strip():
                continue
            try:
                record = parse_code_line(line)
            except _ParseError as err:
                raise DgslmError(f"not a code line ({err}): {line.strip()[:60]!r}", path, line_no) from None
            yield line_no, record


def read_code_file(path: str | os.PathLike) -> list[dict[str, str]]:
    """Read a code file; a line that is not a dict of strings is a DgslmError naming file:line."""
    return [record for _, record in iter_code_file(path)]


def format_code_line(record: Mapping[str, str], fmt: str = "python") -> str:
    """One record as a line without newline: Python ``str(dict)`` as the original writes, or JSON."""
    if fmt == "python":
        return str(dict(record))
    if fmt == "jsonl":
        return json.dumps(dict(record), ensure_ascii=False)
    raise DgslmError(f"unknown code file format {fmt!r} (choose from {', '.join(FORMATS)})")


def write_code_file(path: str | os.PathLike, records: Iterable[Mapping[str, str]], fmt: str = "python") -> None:
    """Write one record per line, atomically."""
    lines = [format_code_line(record, fmt) for record in records]
    with atomic_write(path) as handle:
        handle.writelines(line + "\n" for line in lines)
