"""The behavioural protocol of Full-Duplex-Bench (Lin et al., 2025) on voice activity.

Full-Duplex-Bench asks three questions of a live dialogue model, each from the person's known
timeline: does it keep quiet when the person only *pauses* inside a turn, does it *take the turn*
when the person ends theirs (and how fast), and does it *yield* when the person starts talking
over it. The original transcribes the model with an ASR; here (the demo speaks no words) a
*takeover* is the model speaking for at least ``takeover_seconds`` (1 s) within ``horizon``
seconds (3 s) of the event. On a session whose person channel is ``person`` (0 or 1):

- **pause handling**: each pause of the person inside a turn lasting ``pause_range`` (0.4-1.0 s);
  takeover rate, lower is better (its window stops at the person's next turn end, if sooner);
- **smooth turn-taking**: each end of a person's turn followed by silence; takeover rate (higher
  is better) and latency, from the end of the turn to the start of the model's first IPU in the
  window, over the takeovers (negative when the model started before the person stopped);
- **user interruption**: each start of a person's IPU while the model is inside an IPU; the
  yield time runs from the person's start to the end of the model's IPU (its first silence of
  ``min_silence``), and the model *yielded* when that comes before the person's IPU ends.

The person's timeline comes from a reference dialogue (:func:`timeline_from_dialogue`: the
corpus, where the partner's channel tells pauses from turn ends) or from the person's channel
alone (:func:`timeline_from_channel`: a silence of ``turn_silence`` or more ends a turn).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dgslm.evaluation.turn_taking import DialogueEvents, intersect_intervals


@dataclass
class FullDuplexConfig:
    """Windows and thresholds of the protocol (seconds)."""

    pause_range: tuple[float, float] = (0.4, 1.0)
    takeover_seconds: float = 1.0
    horizon: float = 3.0
    turn_silence: float = 1.5  # timeline_from_channel: a silence this long ends a turn


@dataclass
class PersonTimeline:
    """The person's events, in samples: pauses ``[N, 2]``, turn ends ``[M]``, IPUs ``[K, 2]``."""

    pauses: np.ndarray
    turn_ends: np.ndarray
    ipus: np.ndarray


def _within(spans: np.ndarray, low: float, high: float, sample_rate: int) -> np.ndarray:
    seconds = (spans[:, 1] - spans[:, 0]) / sample_rate
    return spans[(seconds >= low - 1e-9) & (seconds <= high + 1e-9)]


def timeline_from_dialogue(events: DialogueEvents, person: int, cfg: FullDuplexConfig) -> PersonTimeline:
    """The person's timeline in a two-party dialogue: their pauses (both channels silent, the
    person on both sides) within ``pause_range``, and their turn ends (the starts of the gaps
    after their IPUs: the other party speaks next)."""
    pauses = events.pauses[events.pause_speakers == person].reshape(-1, 2)
    gaps = events.gaps[events.gap_speakers == person].reshape(-1, 2)
    return PersonTimeline(_within(pauses, *cfg.pause_range, events.sample_rate), gaps[:, 0], events.ipus[person])


def timeline_from_channel(events: DialogueEvents, person: int, cfg: FullDuplexConfig) -> PersonTimeline:
    """The person's timeline from their channel alone: silences between their IPUs within
    ``pause_range`` are pauses, silences of ``turn_silence`` or more (also to the end of the
    session) end a turn."""
    ipus, sr = events.ipus[person], events.sample_rate
    silences = np.stack([ipus[:-1, 1], ipus[1:, 0]], axis=1) if len(ipus) > 1 else np.zeros((0, 2), np.int64)
    ends = np.append(silences[:, 0], ipus[-1, 1]) if len(ipus) else np.zeros(0, np.int64)
    starts = np.append(silences[:, 1], events.num_samples) if len(ipus) else np.zeros(0, np.int64)
    turn_ends = ends[(starts - ends) >= cfg.turn_silence * sr - 1e-9]
    return PersonTimeline(_within(silences, *cfg.pause_range, sr), turn_ends, ipus)


@dataclass
class FullDuplexResult:
    """Per-event outcomes of one session (seconds)."""

    name: str
    pause_takeovers: np.ndarray  # bool per pause
    turn_takeovers: np.ndarray  # bool per turn end
    turn_latencies: np.ndarray  # seconds per turn end; nan where the model did not take over
    yield_seconds: np.ndarray  # per interruption
    yielded: np.ndarray  # bool per interruption: the model stopped before the person did

    def to_dict(self) -> dict:
        """The summary and every event's outcome (JSON-ready; a latency without takeover: None)."""
        events = {k: [None if isinstance(v, float) and np.isnan(v) else v for v in getattr(self, k).tolist()]
                  for k in ("pause_takeovers", "turn_takeovers", "turn_latencies", "yield_seconds", "yielded")}  # fmt: skip
        return {**summarize([self]), "events": events}


def full_duplex(
    session: DialogueEvents, timeline: PersonTimeline, person: int, cfg: FullDuplexConfig | None = None
) -> FullDuplexResult:
    """The protocol's outcomes for the model (the channel other than ``person``) of ``session``."""
    cfg = cfg or FullDuplexConfig()
    sr, model = session.sample_rate, session.ipus[1 - person]
    horizon = round(cfg.horizon * sr)

    def window(t: int, end: int | None = None) -> np.ndarray:  # the model's speech in [t, end or t + horizon)
        end = min(t + horizon, session.num_samples) if end is None else end
        return intersect_intervals(model, np.array([[t, end]], dtype=np.int64))

    def takeover(t: int, end: int | None = None) -> bool:
        spans = window(t, end)
        return bool(np.sum(spans[:, 1] - spans[:, 0]) >= cfg.takeover_seconds * sr - 1e-9)

    def pause_end(t: int) -> int:  # a pause's window stops at the person's next turn end
        later = timeline.turn_ends[timeline.turn_ends > t]
        return int(min(t + horizon, session.num_samples, *later[:1]))

    pauses = np.array([takeover(start, pause_end(start)) for start, _ in timeline.pauses], dtype=bool)
    turns = np.array([takeover(t) for t in timeline.turn_ends], dtype=bool)
    first = lambda t: model[np.flatnonzero(model[:, 1] > t)[0], 0]  # noqa: E731  (the model's IPU that takes over)
    latencies = np.array([(first(t) - t) / sr if ok else np.nan for t, ok in zip(timeline.turn_ends, turns)])
    yields, yielded = [], []
    for start, end in timeline.ipus:
        inside = model[(model[:, 0] < start) & (model[:, 1] > start)]
        if len(inside):
            yields.append((inside[0, 1] - start) / sr)
            yielded.append(bool(inside[0, 1] < end))
    return FullDuplexResult(session.name, pauses, turns, latencies, np.array(yields), np.array(yielded, dtype=bool))


def _rate(flags: np.ndarray) -> float | None:
    return float(flags.mean()) if len(flags) else None


def _median(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(np.median(values)) if len(values) else None


def summarize(results: list[FullDuplexResult]) -> dict:
    """Counts, takeover rates, median latency and yield time over the events of all sessions
    (None where there is no such event)."""
    cat = lambda key: np.concatenate([getattr(r, key) for r in results] or [np.zeros(0)])  # noqa: E731
    pauses, turns, latencies = cat("pause_takeovers"), cat("turn_takeovers"), cat("turn_latencies")
    yields, yielded = cat("yield_seconds"), cat("yielded")
    return {
        "pauses": len(pauses),
        "pause_takeover_rate": _rate(pauses.astype(bool)),
        "turn_ends": len(turns),
        "turn_takeover_rate": _rate(turns.astype(bool)),
        "median_latency": _median(latencies),
        "interruptions": len(yields),
        "median_yield_seconds": _median(yields),
        "yield_rate": _rate(yielded.astype(bool)),
    }


def format_summary(summary: dict) -> str:
    """The summary as a few lines of text."""
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    return "\n".join([
        f"pause handling: {summary['pauses']} pauses, takeover rate {fmt(summary['pause_takeover_rate'], '.2f')} (lower is better)",
        f"turn-taking: {summary['turn_ends']} turn ends, takeover rate {fmt(summary['turn_takeover_rate'], '.2f')}, "
        f"median latency {fmt(summary['median_latency'], '.2f')} s",
        f"interruptions: {summary['interruptions']}, median yield {fmt(summary['median_yield_seconds'], '.2f')} s, "
        f"yield rate {fmt(summary['yield_rate'], '.2f')}",
    ])  # fmt: skip
