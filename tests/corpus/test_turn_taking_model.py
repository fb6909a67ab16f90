"""Turn-taking model and timeline events, with a fake synthesiser (length from the text)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from dgslm.corpus.dialogue import TurnTakingConfig, Utterance, plan_dialogue, timeline_events
from dgslm.corpus.sentences import BACKCHANNELS, TOPICS, sentence

SR = 16_000


def fake_speak(channel: int, text: str) -> int:
    return int(0.06 * SR * len(text))  # ~ 0.06 s per character


def plan(seed: int, seconds: float = 60.0, cfg: TurnTakingConfig = TurnTakingConfig()):
    return plan_dialogue(np.random.default_rng(seed), seconds, fake_speak, cfg)


def test_sentences_fill_every_slot_and_are_deterministic():
    for topic in TOPICS:
        rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
        for _ in range(50):
            text = sentence(rng_a, topic)
            assert text == sentence(rng_b, topic)
            assert not re.search(r"[{}]", text) and text[0].isupper()


def test_plan_is_consistent():
    for seed in range(20):
        utterances, total = plan(seed)
        assert total >= 60 * SR and all(0 <= u.start < u.end <= total for u in utterances)
        assert [u.start for u in utterances] == sorted(u.start for u in utterances)
        for channel in (0, 1):
            mine = [u for u in utterances if u.channel == channel]
            # a channel never overlaps itself, and keeps the minimum silence
            assert all(b.start - a.end >= 0.25 * SR - 1 for a, b in zip(mine, mine[1:]))
        for bc in (u for u in utterances if u.kind == "backchannel"):
            assert bc.text in BACKCHANNELS
            holder = [u for u in utterances if u.kind == "turn" and u.start <= bc.start][-1]
            assert holder.channel != bc.channel  # backchannels come from the listener


def test_turn_taking_distributions():
    cfg = TurnTakingConfig()
    events = {"pauses": [], "gaps": [], "overlaps": []}
    transitions = overlapped = backchannels = turns = 0
    for seed in range(40):
        utterances, total = plan(seed, cfg=cfg)
        found = timeline_events(utterances, total)
        for name in events:
            events[name] += [e["end"] - e["start"] for e in found[name]]
        spoken = [u for u in utterances if u.kind == "turn"]
        turns += len(spoken)
        backchannels += sum(u.kind == "backchannel" for u in utterances)
        for a, b in zip(spoken, spoken[1:]):
            if a.channel != b.channel:
                transitions += 1
                overlapped += b.start < a.end
    assert all(len(v) > 50 for v in events.values()), {k: len(v) for k, v in events.items()}
    assert 0.3 < np.median(events["gaps"]) < 0.6  # gap median 0.35 s (+ min-silence clipping)
    assert 0.3 < np.median(events["pauses"]) < 0.9  # within-turn pause median 0.5 s
    assert overlapped / transitions == pytest.approx(cfg.overlap_prob, abs=0.06)
    assert 0.1 < backchannels / turns < 0.4


def test_timeline_events_of_a_known_timeline():
    s = SR
    utterances = [
        Utterance(0, 0 * s, 2 * s, "a", "turn"),
        Utterance(0, int(2.1 * s), 3 * s, "a", "turn"),  # 0.1 s silence: same IPU
        Utterance(0, 4 * s, 5 * s, "a", "turn"),  # pause 3..4
        Utterance(1, int(5.5 * s), 7 * s, "b", "turn"),  # gap 5..5.5
        Utterance(0, int(6.5 * s), 8 * s, "a", "turn"),  # overlap 6.5..7
    ]
    ev = timeline_events(utterances, 9 * s)
    assert [(e["start"], e["end"], e["channel"]) for e in ev["ipus"]] == [
        (0, 3, 0),
        (4, 5, 0),
        (5.5, 7, 1),
        (6.5, 8, 0),
    ]
    assert [(e["start"], e["end"], e["channel"]) for e in ev["pauses"]] == [(3, 4, 0)]
    assert [(e["start"], e["end"]) for e in ev["gaps"]] == [(5, 5.5)]
    assert [(e["start"], e["end"]) for e in ev["overlaps"]] == [(6.5, 7)]
