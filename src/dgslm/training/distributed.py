"""Jobs under ``torchrun``: process-group setup and small collectives for data-parallel
training, and contiguous shards whose per-rank files rank 0 merges (encoding, sampling).

``torchrun --nproc_per_node=N`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; ``init()`` then
joins the group (NCCL on GPU, gloo on CPU). Without those variables everything runs as a
single process and the helpers are no-ops.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from dgslm.fileio import atomic_write, concatenate, tagged_path

# collective timeout of jobs whose ranks may finish hours apart (sharded encoding, sampling):
# they meet only at the final barrier; torchrun stops every rank if one of them fails
JOB_TIMEOUT = datetime.timedelta(days=7)


def launched() -> bool:
    """Whether this process is one of several started by torchrun."""
    return int(os.environ.get("WORLD_SIZE", 1)) > 1


def init(device: str | torch.device | None = None, timeout: datetime.timedelta | None = None) -> torch.device:
    """Join the torchrun process group if launched by torchrun; return this rank's device.

    ``device`` None picks ``cuda:LOCAL_RANK`` when CUDA is available, else CPU. ``timeout``
    bounds every collective (torch's default when None): jobs whose ranks finish far apart
    (encoding shards of unequal length) need a long one for their final barrier."""
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if launched() and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", timeout=timeout)
    return device


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_dict(values: dict[str, float], device: torch.device | str = "cpu") -> dict[str, float]:
    """Sum a dict of floats over all ranks (every rank must pass the same keys)."""
    if not is_distributed() or not values:
        return dict(values)
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return dict(zip(keys, tensor.tolist()))


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``DistributedDataParallel`` around ``model`` when distributed, else ``model``."""
    if not is_distributed():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()


def shard_bounds(count: int, shard_id: int, num_shards: int) -> tuple[int, int]:
    """``[start, end)`` of contiguous shard ``shard_id`` of ``num_shards`` over ``count`` items:
    the shards in order are the items in order, so concatenating their outputs keeps it."""
    return count * shard_id // num_shards, count * (shard_id + 1) // num_shards


def rank_path(path: str | os.PathLike, shard_id: int | None = None, num_shards: int | None = None) -> Path:
    """Where a rank writes its part of ``path``: ``<stem>.rank<K>-of-<N><suffix>``, or
    ``<name>-rank<K>-of-<N>`` for a name without suffix (so that its suffix stays none); this
    rank's by default."""
    k = rank() if shard_id is None else shard_id
    n = world_size() if num_shards is None else num_shards
    return tagged_path(path, f"rank{k}-of-{n}")


def merge_rank_parts(
    paths: Sequence[Path], parts_of: Callable[[int], Sequence[Path]], owners: Sequence[int] | None = None
) -> None:
    """Once every rank has written its parts (``parts_of(rank)``: one per path of ``paths``),
    rank 0 merges them into ``paths`` and then deletes them; every rank waits for it. The
    parts are concatenated in rank order, or, with ``owners`` (the rank of each line of the
    merged file, in order), their lines are interleaved so. One process: nothing to do."""
    if not is_distributed():
        return
    barrier()
    if is_main():
        parts = [list(parts_of(k)) for k in range(world_size())]
        for index, path in enumerate(paths):
            files = [ranks_files[index] for ranks_files in parts]
            if owners is None:
                concatenate(files, path)
            else:
                interleave(files, owners, path)
        for part in (part for files in parts for part in files):
            part.unlink()
    barrier()


def interleave(parts: Sequence[Path], owners: Sequence[int], path: str | os.PathLike) -> None:
    """Write to ``path`` atomically the lines of ``parts``, line ``i`` from part ``owners[i]``
    (each part's lines in their order); parts whose line counts differ from their shares
    are an error."""
    lines = [part.read_text(encoding="utf-8").splitlines(keepends=True) for part in parts]
    shares = [list(owners).count(k) for k in range(len(parts))]
    if wrong := [f"{part}: {len(got)} lines, not {share}" for part, got, share in zip(parts, lines, shares)
                 if len(got) != share]:  # fmt: skip
        raise RuntimeError(f"rank parts do not match the merge: {'; '.join(wrong)}")
    taken = [iter(part_lines) for part_lines in lines]
    with atomic_write(path) as handle:
        handle.writelines(next(taken[owner]) for owner in owners)
