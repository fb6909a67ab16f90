"""PNG plots (matplotlib, Agg backend): a dialogue's timeline and the event duration histograms."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from dgslm.evaluation.report import NAMES
from dgslm.evaluation.turn_taking import EVENTS, DialogueEvents, TurnTakingStats
from dgslm.fileio import atomic_path

COLORS = {"ipu": ("tab:blue", "tab:orange"), "pause": "tab:green", "gap": "tab:red", "overlap": "tab:purple"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def safe_name(name: str) -> str:
    """A file-name-safe version of a dialogue name."""
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "dialogue"


def _save(fig, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    _pyplot().close(fig)
    return Path(path)


def _bars(ax, spans: np.ndarray, sample_rate: int, y: float, height: float, color: str, label: str, **kw) -> None:
    spans = spans / sample_rate
    ax.broken_barh(list(zip(spans[:, 0], spans[:, 1] - spans[:, 0])), (y, height), color=color, label=label, **kw)


def plot_timeline(events: DialogueEvents, path: str | os.PathLike, max_seconds: float | None = 60.0) -> Path:
    """Both channels' IPUs (A above, B below), pauses in their speaker's row, gaps between the
    rows and overlaps across both, over the first ``max_seconds`` seconds (None: all)."""
    plt = _pyplot()
    sr = events.sample_rate
    fig, ax = plt.subplots(figsize=(14, 3.0))
    rows = (2.0, 0.0)  # channel A above, B below
    for c, label in enumerate(("IPU A", "IPU B")):
        _bars(ax, events.ipus[c], sr, rows[c], 1.0, COLORS["ipu"][c], label)
    for c in (0, 1):
        _bars(
            ax,
            events.pauses[events.pause_speakers == c],
            sr,
            rows[c] + 0.3,
            0.4,
            COLORS["pause"],
            "_" if c else "pause",
        )
    _bars(ax, events.gaps, sr, 1.1, 0.8, COLORS["gap"], "gap")
    _bars(ax, events.overlaps, sr, 0.0, 3.0, COLORS["overlap"], "overlap", alpha=0.35)
    end = events.seconds if max_seconds is None else min(events.seconds, max_seconds)
    ax.set_xlim(0, end)
    ax.set_ylim(-0.2, 3.2)
    ax.set_yticks([0.5, 1.5, 2.5], ["channel B", "gaps", "channel A"])
    ax.set_xlabel("time (s)")
    ax.set_title(
        f"{events.name} ({events.seconds:.1f} s{'' if end >= events.seconds else f', first {end:.0f} s shown'})"
    )
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=5, frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def plot_histograms(
    stats: TurnTakingStats, path: str | os.PathLike, reference: TurnTakingStats | None = None, bins: int = 30
) -> Path:
    """One duration histogram per event (density), with the reference set overlaid if given."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(EVENTS), figsize=(4 * len(EVENTS), 3.2))
    for ax, event in zip(axes, EVENTS):
        color = COLORS["ipu"][0] if event == "ipu" else COLORS[event]
        sets = [("evaluated", stats, dict(color=color, alpha=0.6))]
        if reference is not None:
            sets.append(("reference", reference, dict(color="black", histtype="step", linewidth=1.5)))
        data = np.concatenate([s.durations[event] for _, s, _ in sets])
        edges = np.linspace(0, data.max() if len(data) else 1.0, bins + 1)
        for label, s, style in sets:
            d = s.durations[event]
            if len(d):
                ax.hist(d, bins=edges, density=True, label=f"{label} (n={len(d)})", **style)
        ax.set_title(f"{NAMES[event]} durations")
        ax.set_xlabel("duration (s)")
        ax.set_ylabel("density")
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
