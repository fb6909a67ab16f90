"""Turn-taking events and statistics, checked exactly on dialogues with known timings."""

from __future__ import annotations

import numpy as np
import pytest
from dialogue_signals import EXPECTED, GAP_SPEAKERS, PAUSE_SPEAKERS, SECONDS, SPANS_A, SPANS_B, SR, stereo

from dgslm.evaluation.dialogues import EvaluationConfig, analyse
from dgslm.evaluation.turn_taking import EVENTS, TurnTakingStats, find_events, intersect_intervals, merge_intervals

ENERGY = EvaluationConfig(vad="energy")
FRAME = 0.010  # the energy VAD's frame: boundaries off the 10 ms grid move outwards by < 1 frame


def samples(spans) -> np.ndarray:
    return np.round(np.array(spans, dtype=np.float64).reshape(-1, 2) * SR).astype(np.int64)


def events_of(a, b, seconds=10.0, min_silence=0.2):
    return find_events((samples(a), samples(b)), round(seconds * SR), SR, min_silence)


def test_scenario_events_are_exact(scenario):
    events = analyse(scenario, SR, ENERGY)
    for event in EVENTS:
        np.testing.assert_array_equal(events.intervals(event), samples(EXPECTED[event]), err_msg=event)
    assert events.pause_speakers.tolist() == PAUSE_SPEAKERS
    assert events.gap_speakers.tolist() == GAP_SPEAKERS
    np.testing.assert_array_equal(events.speech[0], samples(SPANS_A))
    np.testing.assert_array_equal(events.speech[1], samples(SPANS_B))


def test_scenario_statistics(scenario):
    stats = TurnTakingStats.from_events([analyse(scenario, SR, ENERGY)])
    assert stats.minutes == pytest.approx(SECONDS / 60)
    assert stats.counts == {"ipu": 10, "pause": 3, "gap": 4, "overlap": 2}
    per_minute = {k: stats.per_minute(k) for k in EVENTS}
    assert per_minute == pytest.approx({"ipu": 50.0, "pause": 15.0, "gap": 20.0, "overlap": 10.0})
    seconds = {k: stats.seconds_per_minute(k) for k in EVENTS}
    assert seconds == pytest.approx({"ipu": 8.3 * 5, "pause": 1.0 * 5, "gap": 2.8 * 5, "overlap": 1.0 * 5})
    assert stats.speech_ratio == pytest.approx((4.4 / 12, 3.8 / 12))
    assert stats.to_dict()["gap"]["mean_seconds"] == pytest.approx(0.7)


def test_off_grid_timings_within_one_frame():
    """Shifted 3.7 ms off the frame grid, every boundary moves outwards by less than one frame,
    so silences shrink by up to 2 frames: B's 200 ms silence needs a --min-silence below 180 ms."""
    events = analyse(
        stereo(SPANS_A, SPANS_B, SECONDS, offset=0.0037), SR, EvaluationConfig(vad="energy", min_silence=0.15)
    )
    for event in EVENTS:
        found = events.intervals(event) / SR
        truth = np.array(EXPECTED[event]) + 0.0037
        assert found.shape == truth.shape, event
        np.testing.assert_allclose(found, truth, atol=FRAME, err_msg=event)
    ipus = np.concatenate(events.ipus) / SR
    truth = np.array(EXPECTED["ipu"]) + 0.0037
    assert np.all(ipus[:, 0] <= truth[:, 0]) and np.all(ipus[:, 1] >= truth[:, 1])


def test_min_silence_is_configurable(scenario):
    events = analyse(scenario, SR, EvaluationConfig(vad="energy", min_silence=0.35))
    # pauses of 0.3 and 0.2 s (B) are bridged; A's 0.5 s pause and every gap stay
    assert len(events.pauses) == 1 and len(events.gaps) == 4
    assert events.ipus[1].shape == (4, 2)


def test_statistics_pool_dialogues():
    one = events_of([(1, 2)], [(3, 4)], seconds=30)
    two = events_of([(1, 2), (2.5, 3)], [], seconds=30)
    stats = TurnTakingStats.from_events([one, two])
    assert stats.minutes == pytest.approx(1.0)
    assert stats.counts == {"ipu": 4, "pause": 1, "gap": 1, "overlap": 0}
    assert stats.seconds_per_minute("ipu") == pytest.approx(3.5)
    assert stats.per_minute("gap") == pytest.approx(1.0)
    assert stats.seconds_per_minute("pause") == pytest.approx(0.5)


def test_nested_ipu_is_overlap_without_turn_change():
    events = events_of([(1, 5)], [(2, 3)])
    assert len(events.gaps) == 0 and len(events.pauses) == 0
    np.testing.assert_array_equal(events.overlaps, samples([(2, 3)]))


def test_other_speaker_inside_a_silence_makes_gaps_not_a_pause():
    events = events_of([(1, 2), (4, 5)], [(2.5, 3)])
    assert len(events.pauses) == 0
    np.testing.assert_array_equal(events.gaps, samples([(2, 2.5), (3, 4)]))
    assert events.gap_speakers.tolist() == [0, 1]


def test_touching_turns_are_neither_gap_nor_overlap():
    events = events_of([(1, 2)], [(2, 3)])
    assert len(events.gaps) == len(events.overlaps) == len(events.pauses) == 0


def test_simultaneous_ends_then_one_resumes_is_a_pause():
    events = events_of([(1, 2), (3, 4)], [(1.5, 2)])
    np.testing.assert_array_equal(events.pauses, samples([(2, 3)]))
    assert events.pause_speakers.tolist() == [0] and len(events.gaps) == 0


def test_leading_and_trailing_silence_and_empty_channels_are_ignored():
    events = events_of([(3, 4)], [])
    assert len(events.pauses) == len(events.gaps) == len(events.overlaps) == 0
    empty = events_of([], [])
    stats = TurnTakingStats.from_events([empty])
    assert stats.counts == {k: 0 for k in EVENTS} and stats.speech_ratio == (0.0, 0.0)
    assert stats.to_dict()["ipu"]["mean_seconds"] == 0.0


def test_interval_helpers():
    spans = np.array([[50, 60], [0, 10], [12, 20], [20, 30]])
    np.testing.assert_array_equal(merge_intervals(spans), [[0, 10], [12, 30], [50, 60]])
    np.testing.assert_array_equal(merge_intervals(spans, 20), [[0, 30], [50, 60]])
    np.testing.assert_array_equal(merge_intervals(spans, 21), [[0, 60]])
    a, b = np.array([[0, 10], [20, 30]]), np.array([[5, 25], [30, 40]])
    np.testing.assert_array_equal(intersect_intervals(a, b), [[5, 10], [20, 25]])
    assert intersect_intervals(a, np.zeros((0, 2), dtype=np.int64)).shape == (0, 2)
