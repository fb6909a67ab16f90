"""Blocks, run-length targets and batch order against the original's validation references."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dgslm.errors import DgslmError
from dgslm.lm.batching import batch_by_size, epoch_batches, ordered_indices
from dgslm.lm.config import TaskConfig
from dgslm.lm.dataset import SpeechDLMDataset, TokenStream, block_boundaries, collate
from dgslm.lm.targets import run_targets
from dgslm.lm.validation import validation_batches
from dgslm.units.indexed_dataset import IndexedDataset, write_indexed_dataset

CHANNELS = ("unitA", "unitB")


@pytest.fixture(scope="module")
def valid(reference):
    return SpeechDLMDataset.load(reference / "speechdlm/data-bin", "valid", CHANNELS, TaskConfig(tokens_per_sample=256))


def test_blocks_and_targets_match_reference(reference, valid):
    expected = json.loads((reference / "speechdlm/validate.json").read_text())["blocks"]
    assert len(valid) == len(expected) == 8
    assert valid.sizes.tolist() == [256] * 7 + [106]
    for block in expected:
        item = valid[block["id"]]
        for c, channel in enumerate(CHANNELS):
            assert item["source"][c].tolist() == block["source"][channel]
            assert item["edge"][c].tolist() == block["target_edge"][channel]
            assert item["duration"][c].tolist() == block["target_duration"][channel]
            assert item["edge_indices"][c].tolist() == block["target_edge_indices"][channel]


def test_source_is_target_shifted_by_one(valid):
    for i in range(1, len(valid)):
        previous, item = valid[i - 1], valid[i]
        for c in range(2):
            assert item["source"][c][0] == previous["next"][c][-1]
            assert torch.equal(item["source"][c][1:], item["next"][c][:-1])


def test_batch_order_matches_reference(reference, valid):
    for name in ("validate.json", "cross_validate.json"):
        expected = json.loads((reference / "speechdlm" / name).read_text())["batches"]
        batches = validation_batches(valid, max_tokens=6144, seed=1)
        assert [b.tolist() for b in batches] == [b["ids"] for b in expected]
        batch = collate([valid[i] for i in batches[0]])
        assert list(batch["src_tokens"].shape) == [expected[0]["src_tokens_shape"][0], 2, 256]


def test_collate_offsets_edges_by_row(valid):
    batch = collate([valid[7], valid[0]])
    width = batch["src_tokens"].shape[-1]
    assert width == 256 and batch["lengths"].tolist() == [106, 256]
    assert (batch["src_tokens"][0, :, 106:] == 1).all()
    n7 = len(valid[7]["edge"][1])
    assert batch["target"]["edge_indices"][1][n7:].tolist() == (valid[0]["edge_indices"][1] + width).tolist()


def test_duration_continues_into_next_block_and_is_capped():
    runs = run_targets(torch.tensor([5, 5, 6, 7, 7]), torch.tensor([7, 7, 7, 8]), pad=1, max_target_durations=256)
    assert runs.edge.tolist() == [5, 6, 7] and runs.edge_indices.tolist() == [0, 2, 3]
    assert runs.duration.tolist() == [2, 1, 5]
    capped = run_targets(torch.tensor([5, 5, 5, 7, 7]), torch.tensor([7, 7, 7, 8]), pad=1, max_target_durations=3)
    assert capped.duration.tolist() == [3, 3]  # first run clipped, continuation stops at the cap


def test_continuation_stops_at_end_of_short_next_block():
    """The original raises IndexError when the next block is all one unit (spec 6 #16)."""
    runs = run_targets(torch.tensor([4, 9, 9]), torch.tensor([9, 9]), pad=1, max_target_durations=256)
    assert runs.duration.tolist() == [1, 4]
    uncapped = run_targets(torch.tensor([9]), torch.tensor([9] * 300), pad=1, max_target_durations=None)
    assert uncapped.duration.tolist() == [301]


def test_break_modes():
    sizes = np.array([3, 5, 2, 4])
    assert block_boundaries(sizes, 4, "none").tolist() == [[0, 4], [4, 8], [8, 12], [12, 14]]
    assert block_boundaries(sizes, 6, "complete").tolist() == [[0, 3], [3, 8], [8, 14]]
    assert block_boundaries(sizes, 4, "eos").tolist() == [[0, 3], [3, 8], [8, 10], [10, 14]]
    with pytest.raises(DgslmError):
        block_boundaries(sizes, 4, "complete_doc")


def _write_channels(folder, lines_a, lines_b):
    write_indexed_dataset(folder / "x.unitA", lines_a, 504)
    write_indexed_dataset(folder / "x.unitB", lines_b, 504)
    return {c: TokenStream(IndexedDataset(folder / f"x.{c}")) for c in CHANNELS}


def test_eos_mode_blocks_start_with_eos(tmp_path):
    streams = _write_channels(tmp_path, [[4, 4, 5, 2], [6, 2]], [[7, 8, 8, 2], [9, 2]])
    data = SpeechDLMDataset(streams, TaskConfig(tokens_per_sample=8, sample_break_mode="eos"))
    item = data[1]
    assert item["source"][0].tolist() == [2, 6] and item["next"][1].tolist() == [9, 2]


def test_channels_with_different_line_lengths_are_rejected(tmp_path):
    streams = _write_channels(tmp_path, [[4, 4, 2], [5, 2]], [[4, 2], [5, 5, 2]])
    with pytest.raises(DgslmError, match="line lengths"):
        SpeechDLMDataset(streams, TaskConfig(tokens_per_sample=4))


def test_batch_by_size_respects_tokens_and_multiple():
    sizes = np.array([10] * 20)
    order = ordered_indices(sizes, seed=1)
    batches = batch_by_size(order, sizes, max_tokens=100, required_batch_size_multiple=8)
    assert [len(b) for b in batches] == [8, 8, 4]
    assert sorted(np.concatenate(batches).tolist()) == list(range(20))
    with pytest.raises(DgslmError, match="max-tokens"):
        batch_by_size(order, np.array([200] * 20), max_tokens=100)


def test_epoch_batches_shard_every_batch_once():
    batches = [np.array([i]) for i in range(5)]
    shards = [epoch_batches(batches, epoch=3, seed=7, rank=r, world_size=2) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 3
    seen = [int(b[0]) for shard in shards for b in shard if b is not None]
    assert sorted(seen) == list(range(5))
    order = lambda epoch: [int(b[0]) for b in epoch_batches(batches, epoch, seed=7)]  # noqa: E731
    assert order(3) == order(3) and sorted(order(4)) == list(range(5))
