"""The Full-Duplex-Bench behavioural metrics on constructed sessions whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dialogue_signals import SR, stereo

from dgslm.audio import write_wav
from dgslm.cli.main import main
from dgslm.evaluation.full_duplex import (
    FullDuplexConfig,
    full_duplex,
    summarize,
    timeline_from_channel,
    timeline_from_dialogue,
)
from dgslm.evaluation.turn_taking import find_events

SECONDS = 20.0
# The person (channel 0): a 0.6 s pause at 2.0-2.6 (in the 0.4-1.0 s range), a 0.3 s one at
# 11.0-11.3 (too short); in the corpus the partner (channel 1) answers each turn end
# (4.0, 8.0, 12.0) after a gap.
PERSON = [(0.5, 2.0), (2.6, 4.0), (7.0, 8.0), (9.5, 11.0), (11.3, 12.0), (16.0, 18.0)]
PARTNER = [(4.3, 6.5), (8.4, 9.2), (12.4, 15.5)]
# The model: a 0.3 s backchannel in the pause (no takeover); at 4.0 it answers after 0.5 s; at
# 8.0 it started 0.4 s early; at 12.0 it says only 0.5 s within 3 s (no takeover); it is
# speaking when the person starts at 9.5 (keeps on 2.0 s, past the person's end at 11.0: no
# yield), at 11.3 (stops 0.2 s later) and at 16.0 (stops 0.8 s later).
MODEL = [(2.1, 2.4), (4.5, 6.0), (7.6, 9.2), (9.45, 11.5), (14.5, 15.0), (15.5, 16.8)]


def samples(spans) -> np.ndarray:
    return np.round(np.array(spans, dtype=np.float64).reshape(-1, 2) * SR).astype(np.int64)


def at(times) -> np.ndarray:
    return np.round(np.array(times, dtype=np.float64) * SR).astype(np.int64)


def events(a, b, name=""):
    return find_events((samples(a), samples(b)), round(SECONDS * SR), SR, 0.2, name)


def test_timeline_from_the_corpus_dialogue():
    timeline = timeline_from_dialogue(events(PERSON, PARTNER), 0, FullDuplexConfig())
    np.testing.assert_array_equal(timeline.pauses, samples([(2.0, 2.6)]))
    np.testing.assert_array_equal(timeline.turn_ends, at([4.0, 8.0, 12.0]))
    np.testing.assert_array_equal(timeline.ipus, samples(PERSON))
    partner = timeline_from_dialogue(events(PERSON, PARTNER), 1, FullDuplexConfig())
    assert len(partner.pauses) == 0
    np.testing.assert_array_equal(partner.turn_ends, at([6.5, 9.2, 15.5]))


def test_timeline_from_the_person_channel_alone():
    timeline = timeline_from_channel(events(PERSON, MODEL), 0, FullDuplexConfig())
    np.testing.assert_array_equal(timeline.pauses, samples([(2.0, 2.6)]))
    # silences of 1.5 s or more end a turn: 4.0-7.0, 8.0-9.5, 12.0-16.0 and 18.0 to the end
    np.testing.assert_array_equal(timeline.turn_ends, at([4.0, 8.0, 12.0, 18.0]))
    longer = timeline_from_channel(events(PERSON, MODEL), 0, FullDuplexConfig(turn_silence=1.6))
    np.testing.assert_array_equal(longer.turn_ends, at([4.0, 12.0, 18.0]))


def test_known_session_outcomes():
    timeline = timeline_from_dialogue(events(PERSON, PARTNER), 0, FullDuplexConfig())
    result = full_duplex(events(PERSON, MODEL, "s"), timeline, 0)
    assert result.pause_takeovers.tolist() == [False]
    assert result.turn_takeovers.tolist() == [True, True, False]
    np.testing.assert_allclose(result.turn_latencies, [0.5, -0.4, np.nan])
    np.testing.assert_allclose(result.yield_seconds, [2.0, 0.2, 0.8])
    assert result.yielded.tolist() == [False, True, True]
    assert summarize([result]) == pytest.approx(
        {
            "pauses": 1,
            "pause_takeover_rate": 0.0,
            "turn_ends": 3,
            "turn_takeover_rate": 2 / 3,
            "median_latency": 0.05,
            "interruptions": 3,
            "median_yield_seconds": 0.8,
            "yield_rate": 2 / 3,
        }
    )
    assert result.to_dict()["events"]["turn_latencies"][2] is None


def test_pause_takeover_and_its_window():
    timeline = timeline_from_dialogue(events(PERSON, PARTNER), 0, FullDuplexConfig())
    # 1.2 s from the pause on, over the person's next words: a takeover
    assert full_duplex(events(PERSON, [(2.1, 3.3)]), timeline, 0).pause_takeovers.tolist() == [True]
    # 0.9 s: not one; neither is speech after the person's turn end at 4.0 (the turn's, not the pause's)
    assert full_duplex(events(PERSON, [(2.1, 3.0)]), timeline, 0).pause_takeovers.tolist() == [False]
    assert full_duplex(events(PERSON, [(3.5, 4.0), (4.3, 6.0)]), timeline, 0).pause_takeovers.tolist() == [False]
    # the corpus partner itself never takes a pause and takes over 2 of 3 turn ends (0.8 s at 8.0)
    corpus = full_duplex(events(PERSON, PARTNER), timeline, 0)
    assert summarize([corpus])["pause_takeover_rate"] == 0.0
    assert corpus.turn_takeovers.tolist() == [True, False, True]
    np.testing.assert_allclose(corpus.turn_latencies, [0.3, np.nan, 0.4])
    # a silent model: nothing taken, nothing interrupted, no latency
    silent = summarize([full_duplex(events(PERSON, []), timeline, 0)])
    assert silent["turn_takeover_rate"] == 0.0 and silent["median_latency"] is None
    assert silent["interruptions"] == 0 and silent["yield_rate"] is None


def test_dgslm_evaluate_full_duplex(tmp_path, capsys):
    """Through audio, the energy VAD and the CLI: the same answers (boundaries on the 10 ms grid)."""
    for folder, partner in (("sessions", MODEL), ("corpus", PARTNER)):
        write_wav(tmp_path / folder / "d1.wav", stereo(PERSON, partner, SECONDS), SR)
    args = ["evaluate", str(tmp_path / "sessions"), "--vad", "energy", "--json", "--full-duplex", "0"]
    assert main([*args, "--reference", str(tmp_path / "corpus")]) == 0
    out = json.loads(capsys.readouterr().out)["full_duplex"]
    assert out["summary"]["turn_takeover_rate"] == pytest.approx(2 / 3)
    assert out["summary"]["median_yield_seconds"] == pytest.approx(0.8)
    assert out["dialogues"][0]["name"] == "d1"
    assert out["dialogues"][0]["events"]["turn_latencies"] == pytest.approx([0.5, -0.4, None])
    # without a reference the person's channel gives the timeline: 18.0 is a turn end too
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["full_duplex"]["summary"]["turn_ends"] == 4
    # a reference without the session's dialogue: a one-line error
    write_wav(tmp_path / "other" / "d2.wav", stereo(PERSON, PARTNER, SECONDS), SR)
    assert main([*args, "--reference", str(tmp_path / "other")]) == 1
    assert "no reference dialogue named 'd1'" in capsys.readouterr().err
