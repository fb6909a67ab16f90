"""Turn-taking model of a two-party conversation, and the turn-taking events of its timeline.

``plan_dialogue`` lays out utterances on two channels from the distributions of
``TurnTakingConfig`` (all times in seconds, converted to samples once drawn):

- the floor alternates; a turn holds ``1 + Geometric`` utterances (``P(one more) = more_utterance_prob``);
- pauses inside a turn: log-normal (median ``pause_median``, shape ``pause_sigma``), clipped;
- floor transfer offset between turns: with ``overlap_prob`` an overlap, the next turn starting
  ``Uniform(overlap_min, overlap_max)`` before the previous turn ends (at most half of its last
  utterance); otherwise a gap, log-normal (median ``gap_median``, shape ``gap_sigma``), clipped;
- backchannels: during each turn utterance of at least ``backchannel_min_utterance`` seconds the
  listener says a backchannel with ``backchannel_prob``, starting at ``Uniform(0.3, 0.9)`` of it;
- one channel never overlaps itself: its next utterance starts at least ``min_silence`` after
  its previous one ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dgslm.corpus.sentences import TOPICS, backchannel, sentence
from dgslm.evaluation.turn_taking import find_events


@dataclass
class TurnTakingConfig:
    """Parameters of the turn-taking distributions (seconds; see the module docstring)."""

    more_utterance_prob: float = 0.4
    max_utterances_per_turn: int = 4
    pause_median: float = 0.5
    pause_sigma: float = 0.5
    pause_range: tuple[float, float] = (0.2, 2.5)
    gap_median: float = 0.35
    gap_sigma: float = 0.6
    gap_range: tuple[float, float] = (0.05, 3.0)
    overlap_prob: float = 0.2
    overlap_min: float = 0.1
    overlap_max: float = 0.7
    backchannel_prob: float = 0.3
    backchannel_min_utterance: float = 1.0
    topic_change_prob: float = 0.1
    min_silence: float = 0.25
    lead_silence: tuple[float, float] = (0.2, 1.0)
    tail_silence: float = 0.5


@dataclass
class Utterance:
    channel: int
    start: int  # samples
    end: int  # samples, exclusive
    text: str
    kind: str  # "turn" or "backchannel"


def _lognormal(rng: np.random.Generator, median: float, sigma: float, bounds: tuple[float, float]) -> float:
    return float(np.clip(median * np.exp(sigma * rng.standard_normal()), *bounds))


def plan_dialogue(
    rng: np.random.Generator,
    seconds: float,
    speak: Callable[[int, str], int],
    cfg: TurnTakingConfig | None = None,
    sample_rate: int = 16_000,
) -> tuple[list[Utterance], int]:
    """Utterances of a dialogue of about ``seconds`` (turns are added until it is reached), and
    the total length in samples. ``speak(channel, text)`` gives an utterance's length in samples."""
    cfg = cfg or TurnTakingConfig()

    def samples(t: float) -> int:
        return int(round(t * sample_rate))

    utterances: list[Utterance] = []
    free = [-samples(seconds), -samples(seconds)]  # per channel: where its last utterance ended
    topic = str(rng.choice(sorted(TOPICS)))
    speaker = int(rng.integers(2))
    turn_end = samples(rng.uniform(*cfg.lead_silence))
    last_length = 0
    while turn_end < samples(seconds):
        listener = 1 - speaker
        if not utterances:
            start = turn_end
        elif rng.random() < cfg.overlap_prob:
            overlap = min(rng.uniform(cfg.overlap_min, cfg.overlap_max), 0.5 * last_length / sample_rate)
            start = turn_end - samples(overlap)
        else:
            start = turn_end + samples(_lognormal(rng, cfg.gap_median, cfg.gap_sigma, cfg.gap_range))
        if rng.random() < cfg.topic_change_prob:
            topic = str(rng.choice(sorted(TOPICS)))
        count = 1
        while count < cfg.max_utterances_per_turn and rng.random() < cfg.more_utterance_prob:
            count += 1
        for k in range(count):
            if k > 0:
                start = free[speaker] + samples(_lognormal(rng, cfg.pause_median, cfg.pause_sigma, cfg.pause_range))
            start = max(start, free[speaker] + samples(cfg.min_silence))
            text = sentence(rng, topic)
            end = start + speak(speaker, text)
            utterances.append(Utterance(speaker, start, end, text, "turn"))
            free[speaker] = end
            if end - start >= samples(cfg.backchannel_min_utterance) and rng.random() < cfg.backchannel_prob:
                bc_start = max(
                    start + int(rng.uniform(0.3, 0.9) * (end - start)), free[listener] + samples(cfg.min_silence)
                )
                bc_text = backchannel(rng)
                bc_end = bc_start + speak(listener, bc_text)
                utterances.append(Utterance(listener, bc_start, bc_end, bc_text, "backchannel"))
                free[listener] = bc_end
        turn_end, last_length = end, end - start
        speaker = listener
    total = max(free) + samples(cfg.tail_silence)
    utterances.sort(key=lambda u: (u.start, u.channel))
    return utterances, total


def timeline_events(
    utterances: list[Utterance], total: int, sample_rate: int = 16_000, ipu_silence: float = 0.2
) -> dict[str, list[dict]]:
    """The turn-taking events of the utterances' timeline, in seconds, with the definitions of
    ``dgslm.evaluation.turn_taking.find_events`` (so they are the ground truth of ``dgslm evaluate``):
    IPUs and pauses carry their channel; gaps and overlaps are ``{start, end}``."""
    speech = tuple(
        np.array([(u.start, u.end) for u in utterances if u.channel == c], dtype=np.int64).reshape(-1, 2)
        for c in (0, 1)
    )
    events = find_events(speech, total, sample_rate, ipu_silence)

    def spans(intervals: np.ndarray, channels=None) -> list[dict]:
        out = [{"start": int(s) / sample_rate, "end": int(e) / sample_rate} for s, e in intervals]
        if channels is not None:
            for span, channel in zip(out, channels):
                span["channel"] = int(channel)
        return out

    ipus = sorted(
        (span for c in (0, 1) for span in spans(events.ipus[c], [c] * len(events.ipus[c]))),
        key=lambda span: (span["start"], span["channel"]),
    )
    return {
        "ipus": ipus,
        "pauses": spans(events.pauses, events.pause_speakers),
        "gaps": spans(events.gaps),
        "overlaps": spans(events.overlaps),
    }
