"""Console tables and comparisons of turn-taking statistics (generated vs. reference dialogues)."""

from __future__ import annotations

import numpy as np
from scipy.stats import ks_2samp, wasserstein_distance

from dgslm.evaluation.turn_taking import EVENTS, TurnTakingStats

NAMES = {"ipu": "IPU", "pause": "Pause", "gap": "Gap", "overlap": "Overlap"}


def _ratio(value: float, reference: float) -> float | None:
    return value / reference if reference else None


def compare(stats: TurnTakingStats, reference: TurnTakingStats) -> dict:
    """Per event: ratios (ours / reference) of the per-minute count and duration, and distances
    between the duration distributions: Wasserstein-1 (seconds) and the Kolmogorov-Smirnov
    statistic (None where either set has no such event)."""
    out = {}
    for event in EVENTS:
        ours, theirs = stats.durations[event], reference.durations[event]
        both = len(ours) > 0 and len(theirs) > 0
        out[event] = {
            "per_minute_ratio": _ratio(stats.per_minute(event), reference.per_minute(event)),
            "seconds_per_minute_ratio": _ratio(stats.seconds_per_minute(event), reference.seconds_per_minute(event)),
            "wasserstein_seconds": float(wasserstein_distance(ours, theirs)) if both else None,
            "ks_statistic": float(ks_2samp(ours, theirs).statistic) if both else None,
        }
    out["speech_ratio"] = [_ratio(a, b) for a, b in zip(stats.speech_ratio, reference.speech_ratio)]
    return out


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def format_table(stats: TurnTakingStats, reference: TurnTakingStats | None = None) -> str:
    """A plain-text table: N = events per minute, Δ = cumulated seconds per minute, mean duration;
    with ``reference``, its values, the ratios and the duration distances too."""
    header = ["event", "N/min", "Δ s/min", "mean s"]
    if reference is not None:
        header += ["ref N/min", "ref Δ s/min", "N ratio", "Δ ratio", "W1 s", "KS"]
        comparison = compare(stats, reference)
    rows = []
    for event in EVENTS:
        row = [NAMES[event], _fmt(stats.per_minute(event)), _fmt(stats.seconds_per_minute(event))]
        row.append(_fmt(stats.durations[event].mean() if stats.counts[event] else None, 3))
        if reference is not None:
            c = comparison[event]
            row += [_fmt(reference.per_minute(event)), _fmt(reference.seconds_per_minute(event))]
            row += [_fmt(c["per_minute_ratio"]), _fmt(c["seconds_per_minute_ratio"])]
            row += [_fmt(c["wasserstein_seconds"], 3), _fmt(c["ks_statistic"], 3)]
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths)))
        for r in [header, *rows]
    ]
    lines.insert(1, "-" * len(lines[0]))
    speech = " / ".join(f"{r:.1%}" for r in stats.speech_ratio)
    lines.append(f"{stats.dialogues} dialogue(s), {stats.minutes:.2f} min; speech ratio A / B: {speech}")
    if reference is not None:
        speech = " / ".join(f"{r:.1%}" for r in reference.speech_ratio)
        lines.append(
            f"reference: {reference.dialogues} dialogue(s), {reference.minutes:.2f} min; speech ratio A / B: {speech}"
        )
    return "\n".join(lines)
