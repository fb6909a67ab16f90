"""SpeechDLM losses and metrics (the original's ``speech_dlm_criterion``).

For every (source channel ``c``, predicted channel ``p``) pair with a head (only ``p == c``
without cross heads) and every target:

- ``next`` (``general_token``): NLL of every position against the next unit;
- ``edge`` (``edge_token``): NLL at run starts against the run's unit;
- ``duration`` (``edge_duration``): L1 of the duration head against the run length, read at
  the run start, or one step later with ``delayed_duration_target``.

Pair losses are weighted by ``channel_weight[c] * (main if p == c else cross)``; edge and
duration losses are per-edge means rescaled by the pair's sample size, so the trainer's
division by the summed sample size gives a mean. ``loss = sum_t weight_t * sum_pairs L``.

Two defects of the original are fixed unless ``fairseq_compat`` is set:

1. delayed durations read position ``k + 1`` of the *flattened* batch, so a run starting at a
   block's last position is scored against the next row's first prediction (or a pad
   prediction). We drop such runs: their duration is predicted in the next block.
2. the un-prefixed ``edge_token_loss``/``edge_duration_loss``/``general_token_loss`` divide
   the weighted, rescaled sum by raw counts. We report the plain mean over all pairs.

Also in correct mode, pad positions are not counted as ``next`` targets nor as samples.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import torch
import torch.nn.functional as F

from dgslm.lm.config import CriterionConfig, SpeechDLMConfig

METRIC_NAMES = {"next": "general_token", "edge": "edge_token", "duration": "edge_duration"}
LN2 = math.log(2)


def pair_prefix(channels: tuple[str, ...], source: int, predicted: int) -> str:
    """The metric-name prefix of a (source, predicted) channel pair, e.g. ``[unitA-unitB]``."""
    return f"[{channels[source]}-{channels[predicted]}]"


class SpeechDLMCriterion:
    """``criterion(output, batch) -> (loss, sample_size, logging_output)``; ``loss`` is the
    summed (not averaged) objective to back-propagate, ``logging_output`` a dict of float sums
    that add up over batches and workers; ``reduce_metrics`` turns the sums into metrics."""

    def __init__(self, cfg: CriterionConfig, model: SpeechDLMConfig):
        self.cfg, self.model = cfg, model
        self.targets, self.channels, self.pad = model.targets, model.channels, model.pad_index
        if "next" in self.targets and model.general_unit_loss_weight <= 0 and not cfg.fairseq_compat:
            raise ValueError("the next-unit target needs --general-unit-loss-weight > 0")

    def pair_weight(self, source: int, predicted: int) -> float:
        """The weight of source channel ``source`` predicting channel ``predicted``."""
        channel = self.cfg.channel_weights[source] if self.cfg.channel_weights else 1.0
        return channel * self.model.main_and_cross_weights[0 if source == predicted else 1]

    def __call__(self, output, batch: dict) -> tuple[torch.Tensor, float, dict[str, float]]:
        cfg = self.cfg
        logits, durations = output.logits, output.durations
        batch_size, channels, heads, width, vocab = logits.shape
        src = batch["src_tokens"]
        target = batch["target"]
        real = src[:, 0] != self.pad  # (B, T) real positions
        if cfg.sentence_avg:
            sample_size = float(batch_size)
        else:
            sample_size = float(src[:, 0].numel() if cfg.fairseq_compat else int(real.sum()))
        totals = {t: logits.new_zeros(()) for t in self.targets}
        log: dict[str, float] = {}
        global_raw = {f"{METRIC_NAMES[t]}_{k}": 0.0 for t in self.targets for k in ("loss", "correct", "count")}
        for c in range(channels):
            for k in range(heads):
                p = (c + k) % channels
                weight = self.pair_weight(c, p)
                prefix = pair_prefix(self.channels, c, p)
                log[f"{prefix}ntokens"] = sample_size
                log[f"{prefix}sample_size"] = sample_size
                flat_logits = logits[:, c, k].reshape(batch_size * width, vocab)
                for t in self.targets:
                    loss_sum, correct, count = self._pair_target(t, flat_logits, durations, c, k, p, target, real)
                    name = METRIC_NAMES[t]
                    if t == "next":
                        totals[t] = totals[t] + weight * loss_sum
                    elif count > 0:
                        totals[t] = totals[t] + weight * loss_sum / count * sample_size
                    log[f"{prefix}{name}_loss"] = float(loss_sum.detach())
                    log[f"{prefix}{name}_correct"] = float(correct)
                    log[f"{prefix}{name}_count"] = float(count)
                    global_raw[f"{name}_loss"] += float(loss_sum.detach())
                    global_raw[f"{name}_correct"] += float(correct)
                    global_raw[f"{name}_count"] += float(count)
        pairs = channels * heads
        loss = sum(self.model.loss_weight(t) * totals[t] for t in self.targets)
        log.update(global_raw)
        if cfg.fairseq_compat:
            for t in self.targets:
                log[f"{METRIC_NAMES[t]}_loss"] = float(totals[t].detach())
        log.update(
            nsentences=float(batch_size),
            ntokens=sample_size * pairs,
            sample_size=sample_size * pairs,
            loss=float(loss.detach()),
        )
        return loss, sample_size * pairs, log

    def _pair_target(self, t, flat_logits, durations, c, k, p, target, real):
        """(loss sum, correct, count) of target ``t`` for source channel ``c``, head ``k``,
        predicted channel ``p``."""
        cfg = self.cfg
        width = real.shape[1]
        if t == "next":
            labels = target["next"][:, p].reshape(-1)
            lprobs = F.log_softmax(flat_logits.float(), dim=-1)
            loss_sum = F.nll_loss(lprobs, labels, ignore_index=self.pad, reduction="sum")
            keep = labels != self.pad
            hits = lprobs.argmax(-1) == labels
            if cfg.fairseq_compat:
                return loss_sum, int(hits.sum()), labels.numel()
            return loss_sum, int((hits & keep).sum()), int(keep.sum())
        indices = target["edge_indices"][p]
        if t == "edge":
            labels = target["edge"][p]
            lprobs = F.log_softmax(flat_logits[indices].float(), dim=-1)
            loss_sum = F.nll_loss(lprobs, labels, ignore_index=self.pad, reduction="sum")
            return loss_sum, int((lprobs.argmax(-1) == labels).sum()), labels.numel()
        labels = target["duration"][p]
        if self.model.delayed_duration_target:
            indices = indices + 1
            if cfg.fairseq_compat:
                keep = indices < real.numel()
            else:  # the prediction must lie inside the same block
                keep = (indices % width != 0) & real.reshape(-1)[indices.clamp(max=real.numel() - 1)]
            indices, labels = indices[keep], labels[keep]
        pred = durations[:, c, k].reshape(-1)[indices].float()
        loss_sum = F.l1_loss(pred, labels.float(), reduction="sum")
        return loss_sum, int((pred.detach().round() == labels).sum()), labels.numel()


def reduce_metrics(sums: dict[str, float], targets: Collection[str], seconds: float | None = None) -> dict[str, float]:
    """Metrics from summed logging outputs, in the order the original prints them.

    Per pair ``[c-p]``: token losses in bits per target (with ``_ppl``), duration loss as the
    mean absolute error in frames, ``_pred_acc`` in percent. ``loss`` is the objective per
    sample in bits; ``wps`` tokens per second (when ``seconds`` is given), ``wpb``/``bsz``
    summed tokens/sentences."""
    prefixes = sorted({key[: key.index("]") + 1] for key in sums if key.startswith("[")})
    order = [t for t in ("next", "duration", "edge") if t in targets]
    metrics: dict[str, float] = {}
    ppl: dict[str, float] = {}
    for prefix in prefixes + [""]:
        for t in order:
            name = f"{prefix}{METRIC_NAMES[t]}"
            count = sums.get(f"{name}_count", 0.0)
            if not count:
                continue
            value = sums[f"{name}_loss"] / count
            if t != "duration":
                value /= LN2
                ppl[f"{name}_ppl"] = _safe_pow2(value)
            metrics[f"{name}_loss"] = value
            metrics[f"{name}_pred_acc"] = 100.0 * sums[f"{name}_correct"] / count
        if prefix == "" and sums.get("sample_size"):
            metrics["loss"] = sums["loss"] / sums["sample_size"] / LN2
    metrics.update(ppl)
    if seconds is not None:
        metrics["wps"] = sums.get("ntokens", 0.0) / seconds if seconds > 0 else 0.0
    metrics["wpb"] = sums.get("ntokens", 0.0)
    metrics["bsz"] = sums.get("nsentences", 0.0)
    return metrics


def _safe_pow2(value: float) -> float:
    try:
        return 2.0**value
    except OverflowError:
        return float("inf")


def format_metrics(metrics: dict[str, float]) -> str:
    """``k v | k v`` with the original's rounding: 3 decimals, perplexities 2, ``%g``."""
    parts = []
    for key, value in metrics.items():
        digits = 2 if key.endswith("_ppl") else 3
        parts.append(f"{key} {round(value, digits):g}")
    return " | ".join(parts)
