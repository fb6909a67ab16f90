"""The criterion: the delayed-duration leak of the original (kept only with fairseq_compat),
metric normalisation and the loss-weighting options."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from dgslm.lm.config import CriterionConfig, SpeechDLMConfig, TaskConfig
from dgslm.lm.criterion import SpeechDLMCriterion, format_metrics, reduce_metrics
from dgslm.lm.dataset import SpeechDLMDataset, collate

BLOCKS = [7, 1, 0]  # a short block (padded) first, like the original's batch order
MODEL = SpeechDLMConfig()  # edge + delayed duration targets, no cross heads, the loss weights 0/1/1


@pytest.fixture(scope="module")
def valid(reference):
    return SpeechDLMDataset.load(
        reference / "speechdlm/data-bin", "valid", MODEL.channels, TaskConfig(tokens_per_sample=256)
    )


def fake_output(batch, heads: int = 1, seed: int = 0):
    """Random logits/durations standing in for a model: row r is a function of block id only,
    so a block gets the same outputs in any batch."""
    rows_logits, rows_durations = [], []
    width = batch["src_tokens"].shape[-1]
    for block_id in batch["id"].tolist():
        g = torch.Generator().manual_seed(seed * 1000 + block_id)
        rows_logits.append(torch.randn(2, heads, 256, 504, generator=g)[..., :width, :])
        rows_durations.append((torch.rand(2, heads, 256, generator=g) * 8)[..., :width])
    return SimpleNamespace(logits=torch.stack(rows_logits), durations=torch.stack(rows_durations))


def sums_of(criterion, items):
    batch = collate(items)
    return criterion(fake_output(batch), batch)


@pytest.mark.parametrize("compat", [False, True])
def test_delayed_duration_leak_only_in_compat_mode(valid, compat):
    """Batched vs one block at a time: the same per-block duration sums unless the original's
    flattened k+1 indexing lets a block's last-position run read the next row's prediction."""
    criterion = SpeechDLMCriterion(CriterionConfig(fairseq_compat=compat), MODEL)
    _, _, together = sums_of(criterion, [valid[i] for i in BLOCKS])
    alone = [sums_of(criterion, [valid[i]])[2] for i in BLOCKS]
    for key in ("[unitA-unitA]edge_duration_loss", "[unitB-unitB]edge_duration_count"):
        separately = sum(log[key] for log in alone)
        if compat:
            assert together[key] != pytest.approx(separately, rel=1e-6)
        else:
            assert together[key] == pytest.approx(separately, rel=1e-6)
    for key in ("[unitA-unitA]edge_token_loss", "[unitB-unitB]edge_token_count"):  # no leak here
        assert together[key] == pytest.approx(sum(log[key] for log in alone), rel=1e-6)


def test_correct_mode_drops_exactly_the_block_final_runs(valid):
    criterion = SpeechDLMCriterion(CriterionConfig(), MODEL)
    items = [valid[i] for i in BLOCKS]
    _, _, log = sums_of(criterion, items)
    for c, channel in enumerate(("unitA", "unitB")):
        final = sum(int(item["edge_indices"][c][-1]) == len(item["next"][c]) - 1 for item in items)
        edges = sum(len(item["edge"][c]) for item in items)
        assert final > 0
        assert log[f"[{channel}-{channel}]edge_duration_count"] == edges - final


def test_global_metrics_are_plain_means_unless_compat(valid):
    items = [valid[i] for i in BLOCKS]
    for compat in (False, True):
        cfg = CriterionConfig(fairseq_compat=compat)
        criterion = SpeechDLMCriterion(cfg, MODEL)
        _, _, log = sums_of(criterion, items)
        metrics = reduce_metrics(log, criterion.targets)
        pairs = ("[unitA-unitA]", "[unitB-unitB]")
        mean = sum(log[f"{p}edge_token_loss"] for p in pairs) / sum(log[f"{p}edge_token_count"] for p in pairs)
        if compat:  # the original's: weighted, sample-size-rescaled sums over raw counts
            ss = log["[unitA-unitA]sample_size"]
            rescaled = sum(log[f"{p}edge_token_loss"] / log[f"{p}edge_token_count"] * ss for p in pairs)
            expected = rescaled / log["edge_token_count"] / math.log(2)
            assert metrics["edge_token_loss"] == pytest.approx(expected, rel=1e-5)
            assert metrics["edge_token_loss"] > 4 * mean / math.log(2)
        else:
            assert metrics["edge_token_loss"] == pytest.approx(mean / math.log(2))
        assert " | loss " in format_metrics(metrics)


def test_loss_weights(valid):
    items = [valid[i] for i in BLOCKS]
    base = CriterionConfig()
    loss, sample_size, log = sums_of(SpeechDLMCriterion(base, MODEL), items)
    per_pair = {
        p: log[f"{p}edge_token_loss"] / log[f"{p}edge_token_count"]
        + log[f"{p}edge_duration_loss"] / log[f"{p}edge_duration_count"]
        for p in ("[unitA-unitA]", "[unitB-unitB]")
    }
    ss = log["[unitA-unitA]sample_size"]
    assert float(loss) == pytest.approx(ss * sum(per_pair.values()), rel=1e-5)
    only_a, _, _ = sums_of(SpeechDLMCriterion(replace(base, channel_weights=(1.0, 0.0)), MODEL), items)
    assert float(only_a) == pytest.approx(ss * per_pair["[unitA-unitA]"], rel=1e-5)
    no_duration, _, _ = sums_of(SpeechDLMCriterion(base, replace(MODEL, duration_loss_weight=0.0)), items)
    assert float(no_duration) < float(loss)
    _, sentences, _ = sums_of(SpeechDLMCriterion(replace(base, sentence_avg=True), MODEL), items)
    assert sentences == 2 * len(items)


def test_cross_heads_and_next_target(valid):
    items = [valid[i] for i in BLOCKS]
    model = replace(
        MODEL, next_unit_prediction=True, delayed_duration_target=False,
        main_and_cross_weights=(1.0, 0.5), general_unit_loss_weight=0.5,
    )  # fmt: skip
    cfg = CriterionConfig()
    batch = collate(items)
    loss, _, log = SpeechDLMCriterion(cfg, model)(fake_output(batch, heads=2), batch)
    assert {"[unitA-unitB]edge_token_loss", "[unitB-unitA]general_token_loss"} <= set(log)
    real = int(batch["lengths"].sum())
    assert log["[unitA-unitA]general_token_count"] == real  # pads are no targets
    compat = replace(cfg, fairseq_compat=True)
    _, _, log = SpeechDLMCriterion(compat, model)(fake_output(batch, heads=2), batch)
    assert log["[unitA-unitA]general_token_count"] == batch["src_tokens"][:, 0].numel()
    assert torch.isfinite(loss)
