"""Wall-clock timing shared by the benchmarks (CUDA work is synchronised before reading the clock)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch


def _sync(device: torch.device | str | None) -> None:
    if torch.device(device or "cpu").type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: torch.device | str | None = None) -> tuple[Any, float]:
    """Run ``fn`` once; return its result and the seconds it took."""
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - start


def repeated(fn: Callable[[], Any], repeats: int, device: torch.device | str | None = None) -> list[float]:
    """Seconds of each of ``repeats`` runs of ``fn``."""
    return [timed(fn, device)[1] for _ in range(repeats)]


def matmul_gflops(dtype: torch.dtype = torch.float32, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of the fastest of ``repeats`` ``size``-cubed matrix products in ``dtype`` at the
    current thread count: the CPU's practical ceiling for dense work in that dtype."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b  # warm-up
    return 2 * size**3 / min(repeated(lambda: a @ b, repeats)) / 1e9
