"""Training-state files: atomic save/load, RNG states, latest-checkpoint discovery, pruning.

A training state is a plain dict (model/optimizer/scheduler/scaler state dicts, counters, data
position, ``rng``) saved with ``torch.save`` through a temporary file and a rename, so a run
killed mid-write never leaves a broken checkpoint. Everything stored is loadable with
``torch.load(weights_only=True)``: RNG states are kept as tensors, lists and numbers.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dgslm.errors import DgslmError
from dgslm.fileio import atomic_path


def rng_state() -> dict[str, Any]:
    """The python, numpy, torch and (if present) CUDA random states."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": _to_lists(random.getstate()),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }  # fmt: skip
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    random.setstate(_to_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():  # one state per GPU of the saving run
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu(), index)


def _to_lists(value):
    return [_to_lists(v) for v in value] if isinstance(value, (tuple, list)) else value


def _to_tuples(value):
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """``torch.save`` ``state`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training state saved by ``save_state`` (no code runs: ``weights_only``). Tensors
    go to ``map_location`` except the RNG states (any ``rng`` entry), which ``set_rng_state``
    needs on the CPU."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DgslmError("checkpoint not found", path) from None
    except Exception as err:  # unpickling errors have many types
        raise DgslmError(f"cannot read checkpoint: {err}", path) from None
    return _to_device(state, torch.device(map_location))


def _to_device(value: Any, device: torch.device) -> Any:
    """``value`` with its tensors moved to ``device``, except under ``rng`` keys."""
    if device.type == "cpu":
        return value
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: v if k == "rng" else _to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(v, device) for v in value)
    return value


def latest_checkpoint(folder: str | os.PathLike, name: str = "checkpoint_last.pt") -> Path | None:
    """``folder/name`` if it exists, else None (a fresh run)."""
    path = Path(folder) / name
    return path if path.is_file() else None


def prune_checkpoints(folder: str | os.PathLike, pattern: str, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest files of ``folder`` whose name fully matches
    ``pattern``; "newest" compares the regex groups as integers (e.g. epoch, update).
    ``keep < 0`` keeps everything. Returns the deleted paths."""
    if keep < 0:
        return []
    regex = re.compile(pattern)
    found = []
    for path in Path(folder).iterdir():
        match = regex.fullmatch(path.name)
        if match:
            found.append((tuple(int(g) for g in match.groups()), path))
    found.sort(reverse=True)
    removed = [path for _, path in found[keep:]]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
