"""``dgslm encode`` under ``torchrun``: each rank encodes its contiguous shard of the inputs,
then rank 0 concatenates the shards' files into the final outputs.

Rank K of N writes what a single process would write for its shard, under
``<stem>.rank<K>-of-<N><suffix>`` names (journal included, so each rank resumes on its own).
A shard whose files are written and whose journal is gone is finished: a rerun after a crash
skips it. When every rank is done, rank 0 concatenates the shards in rank order, which is the
input order, so the outputs are byte-identical to one process's; then it deletes the shard
files (a crash in between leaves them finished: the rerun only merges).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from pathlib import Path

from dgslm.encoder.encode import EncodeOptions, EncodeSummary, encode_files, journal_path, output_files
from dgslm.encoder.inputs import AudioItem
from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.fileio import concatenate
from dgslm.training import distributed

logger = logging.getLogger(__name__)

# ranks wait for the slowest shard at the final barrier: allow a long encoding job
FINAL_BARRIER_TIMEOUT = datetime.timedelta(days=7)


def shard_done(output: Path, opts: EncodeOptions) -> bool:
    """Whether a shard's files are all written and its journal is gone (a finished shard)."""
    return all(path.exists() for path in output_files(output, opts)) and not journal_path(output).exists()


def encode_on_ranks(
    encoder: UnitEncoder, items: Sequence[AudioItem], output: str | Path, opts: EncodeOptions
) -> EncodeSummary:
    """Encode ``items`` into ``output`` with every torchrun rank (one process: ``encode_files``)."""
    output = Path(output)
    rank, world = distributed.rank(), distributed.world_size()
    if world == 1:
        return encode_files(encoder, items, output, opts)
    start, end = distributed.shard_bounds(len(items), rank, world)
    part = distributed.rank_path(output)
    if shard_done(part, opts):
        logger.info("rank %d: shard already encoded (%s)", rank, part)
        summary = EncodeSummary(resumed=end - start)
    else:
        summary = encode_files(encoder, items[start:end], part, opts)
    logger.info("rank %d of %d: %s -> %s", rank, world, summary, part)
    distributed.barrier()
    if distributed.is_main():
        parts = [output_files(distributed.rank_path(output, k, world), opts) for k in range(world)]
        for index, path in enumerate(output_files(output, opts)):
            concatenate([files[index] for files in parts], path)
        for path in (path for files in parts for path in files):
            path.unlink()
        logger.info("merged %d shards into %s", world, output)
    distributed.barrier()
    return summary
