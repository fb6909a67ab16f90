"""Turn-taking events of a two-channel dialogue (IPUs, pauses, gaps, overlaps) and their
per-minute statistics, as in dGSLM (Nguyen et al. 2022). Exact definitions: README `evaluation`.

Intervals are int64 arrays ``[N, 2]`` of ``[start, end)`` sample indices, sorted and disjoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EVENTS = ("ipu", "pause", "gap", "overlap")


def merge_intervals(intervals: np.ndarray, min_silence: int = 0) -> np.ndarray:
    """Sort and join intervals separated by less than ``min_silence`` samples; touching or
    overlapping intervals are always joined."""
    intervals = np.asarray(intervals, dtype=np.int64).reshape(-1, 2)
    if len(intervals) == 0:
        return intervals
    intervals = intervals[np.argsort(intervals[:, 0], kind="stable")]
    merged = [list(intervals[0])]
    for start, end in intervals[1:]:
        if start - merged[-1][1] < max(min_silence, 1):
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return np.array(merged, dtype=np.int64)


def _as_intervals(spans) -> np.ndarray:
    return np.asarray(spans, dtype=np.int64).reshape(-1, 2)


def intersect_intervals(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Non-empty intersections of two sorted, disjoint interval sets."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        start, end = max(a[i, 0], b[j, 0]), min(a[i, 1], b[j, 1])
        if start < end:
            out.append((start, end))
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return _as_intervals(out)


@dataclass
class DialogueEvents:
    """The turn-taking events of one stereo dialogue (all intervals in samples)."""

    name: str
    sample_rate: int
    num_samples: int
    speech: tuple[np.ndarray, np.ndarray]  # raw VAD output per channel
    ipus: tuple[np.ndarray, np.ndarray]
    pauses: np.ndarray
    pause_speakers: np.ndarray  # channel (0 or 1) that pauses
    gaps: np.ndarray
    gap_speakers: np.ndarray  # channel (0 or 1) whose IPU ends at the gap's start
    overlaps: np.ndarray

    @property
    def seconds(self) -> float:
        return self.num_samples / self.sample_rate

    def intervals(self, event: str) -> np.ndarray:
        """Intervals of ``event`` ("ipu" gives both channels' IPUs together)."""
        if event == "ipu":
            return np.concatenate(self.ipus)
        return {"pause": self.pauses, "gap": self.gaps, "overlap": self.overlaps}[event]

    def durations(self, event: str) -> np.ndarray:
        """Durations in seconds of every ``event``."""
        spans = self.intervals(event)
        return (spans[:, 1] - spans[:, 0]) / self.sample_rate


def find_events(
    speech: tuple[np.ndarray, np.ndarray], num_samples: int, sample_rate: int, min_silence: float = 0.2, name: str = ""
) -> DialogueEvents:
    """IPUs, pauses, gaps and overlaps from each channel's speech intervals (samples).

    An IPU is a channel's speech with its silences shorter than ``min_silence`` seconds filled.
    Every silence of both channels together between two IPUs is a pause when an IPU of the same
    channel ends at its start and starts at its end, and a gap otherwise (one channel stops, the
    other starts). Overlaps are the stretches where both channels are inside an IPU.
    """
    min_samples = round(min_silence * sample_rate)
    ipus = tuple(merge_intervals(channel, min_samples) for channel in speech)
    pauses, pause_speakers, gaps, gap_speakers = [], [], [], []
    together = merge_intervals(np.concatenate(ipus))
    for (_, silence_start), (silence_end, _) in zip(together[:-1], together[1:]):
        left = {c for c in (0, 1) if np.any(ipus[c][:, 1] == silence_start)}
        right = {c for c in (0, 1) if np.any(ipus[c][:, 0] == silence_end)}
        if left & right:
            pauses.append((silence_start, silence_end))
            pause_speakers.append(min(left & right))
        else:
            gaps.append((silence_start, silence_end))
            gap_speakers.append(left.pop())
    return DialogueEvents(
        name=name,
        sample_rate=sample_rate,
        num_samples=num_samples,
        speech=tuple(_as_intervals(c) for c in speech),
        ipus=ipus,
        pauses=_as_intervals(pauses),
        pause_speakers=np.array(pause_speakers, dtype=np.int64),
        gaps=_as_intervals(gaps),
        gap_speakers=np.array(gap_speakers, dtype=np.int64),
        overlaps=intersect_intervals(*ipus),
    )


@dataclass
class TurnTakingStats:
    """Statistics of a set of dialogues: counts and cumulated durations per minute of audio."""

    dialogues: int
    minutes: float
    counts: dict[str, int]
    durations: dict[str, np.ndarray] = field(repr=False)  # every event's duration (s)
    speech_ratio: tuple[float, float]

    @classmethod
    def from_events(cls, events: list[DialogueEvents]) -> TurnTakingStats:
        seconds = sum(e.seconds for e in events)
        durations = {k: np.concatenate([e.durations(k) for e in events] or [np.zeros(0)]) for k in EVENTS}
        speech = [
            sum(int(np.sum(e.speech[c][:, 1] - e.speech[c][:, 0])) / e.sample_rate for e in events) for c in (0, 1)
        ]
        return cls(
            dialogues=len(events),
            minutes=seconds / 60,
            counts={k: len(v) for k, v in durations.items()},
            durations=durations,
            speech_ratio=tuple(s / seconds if seconds else 0.0 for s in speech),
        )

    def per_minute(self, event: str) -> float:
        """Number of ``event`` per minute."""
        return self.counts[event] / self.minutes if self.minutes else 0.0

    def seconds_per_minute(self, event: str) -> float:
        """Cumulated duration of ``event`` (seconds) per minute."""
        return float(self.durations[event].sum()) / self.minutes if self.minutes else 0.0

    def to_dict(self) -> dict:
        return {
            "dialogues": self.dialogues,
            "minutes": self.minutes,
            "speech_ratio": list(self.speech_ratio),
            **{
                event: {
                    "count": self.counts[event],
                    "per_minute": self.per_minute(event),
                    "seconds_per_minute": self.seconds_per_minute(event),
                    "mean_seconds": float(self.durations[event].mean()) if self.counts[event] else 0.0,
                }
                for event in EVENTS
            },
        }
