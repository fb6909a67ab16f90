"""Helpers of the hostile-input suite: run ``dgslm`` in a child process with bounded resources
and check that a refusal is one line naming the file and the problem."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def run_dgslm(*args: str, timeout: float = 300, memory_gb: float = 4) -> subprocess.CompletedProcess:
    """``python -m dgslm args`` in a child limited to ``memory_gb`` of address space; a run that
    does not finish within ``timeout`` seconds fails the test (it would never finish)."""

    def limit() -> None:
        size = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]))
    try:
        return subprocess.run(
            [sys.executable, "-m", "dgslm", *args],
            env=env,
            preexec_fn=limit,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"dgslm {' '.join(args[:4])} ... did not finish in {timeout} s")


def assert_refused(done: subprocess.CompletedProcess, path: Path | str, *words: str) -> str:
    """Exit 1 with a single ``dgslm <cmd>: error: <path>: ...`` line holding ``words``; no traceback."""
    lines = [line for line in done.stderr.splitlines() if ": error: " in line or "Traceback" in line]
    assert done.returncode == 1, f"exit {done.returncode}:\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(lines) == 1, done.stderr[-3000:]
    assert str(path) in lines[0], lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]
