"""Shared test fixtures: the reference files in tests/reference (never skipped if missing).

tests/reference is the project's copy of the compatibility references (files written by the
original implementation and its outputs), so that a clone tests itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import settings

# Property tests: the same examples on every run (CI never flakes on a new random case), and
# no per-example deadline (the CI machine's 2 cores are shared).
settings.register_profile("dgslm", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("dgslm")

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "reference"

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def reference() -> Path:
    """The reference folder; fails (never skips) when it is missing."""
    assert REFERENCE.is_dir(), f"missing {REFERENCE}: the reference files are required"
    return REFERENCE


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a test module (restored after it). Tiny models run op by op are
    overhead-bound: a second thread only adds synchronisation, which stalls on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
