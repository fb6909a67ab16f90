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

import logging
from collections.abc import Sequence
from pathlib import Path

from dgslm.encoder.encode import EncodeOptions, EncodeSummary, encode_files, journal_path, output_files
from dgslm.encoder.inputs import AudioItem
from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.training import distributed

logger = logging.getLogger(__name__)


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
    distributed.merge_rank_parts(
        output_files(output, opts), lambda k: output_files(distributed.rank_path(output, k, world), opts)
    )
    if distributed.is_main():
        logger.info("merged %d shards into %s", world, output)
    return summary
