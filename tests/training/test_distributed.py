"""The shard helpers of ``dgslm.training.distributed`` (their torchrun use: tests/cli/test_torchrun.py)."""

from __future__ import annotations

from pathlib import Path

from dgslm.training import distributed


def test_contiguous_shards_cover_the_items_in_order():
    for count in (0, 1, 5, 8):
        for num_shards in (1, 2, 3):
            bounds = [distributed.shard_bounds(count, k, num_shards) for k in range(num_shards)]
            assert [i for start, end in bounds for i in range(start, end)] == list(range(count))
            assert max(end - start for start, end in bounds) - min(end - start for start, end in bounds) <= 1


def test_rank_paths_keep_the_suffix_and_differ_from_the_output():
    assert distributed.rank_path("out/codes.txt", 3, 8) == Path("out/codes.rank3-of-8.txt")
    assert distributed.rank_path("raw/codes.unitA", 0, 2) == Path("raw/codes.rank0-of-2.unitA")
    # no suffix: the tag is not taken for one (so a per-channel name built from it stays distinct)
    assert distributed.rank_path("units-channel1", 1, 2) == Path("units-channel1-rank1-of-2")
    assert distributed.rank_path("x.txt") == Path("x.rank0-of-1.txt")  # one process: rank 0 of 1


def test_merge_is_nothing_in_one_process(tmp_path):
    part = tmp_path / "a.rank0-of-1.txt"
    part.write_text("x\n")
    distributed.merge_rank_parts([tmp_path / "a.txt"], lambda k: [part])
    assert part.exists() and not (tmp_path / "a.txt").exists()
