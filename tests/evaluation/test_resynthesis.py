"""Resynthesis scores on constructed signals whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from dgslm.evaluation.resynthesis import (
    POWER_FLOOR_DB,
    classify_frames,
    frame_power,
    log_mel_db,
    mel_distance_per_frame,
    score_resynthesis,
)

RATE = 16_000


def tone(seconds: float, amplitude: float, hz: float = 250.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def dialogue(speech: float = 0.5, silence: float = 0.0001) -> np.ndarray:
    """1 s speech (a 250 Hz tone at ``speech``), 1 s silence (a tone at ``silence``), 1 s speech;
    the second channel reversed in time."""
    a = np.concatenate([tone(1, speech), tone(1, silence), tone(1, speech)])
    return np.stack([a, a[::-1].copy()], axis=1)


def test_frame_classes_and_margin():
    power = np.array([1.0] * 10 + [1e-5] * 20 + [10**-3.5] * 3 + [1e-5] * 20)
    classes = classify_frames(power)  # speech >= -30 dB of the top, silence < -40 dB and 5 frames from speech
    assert classes.speech.tolist() == [True] * 10 + [False] * 43
    assert classes.silence.tolist() == [False] * 15 + [True] * 15 + [False] * 3 + [True] * 20  # -35 dB: neither
    np.testing.assert_allclose(frame_power(np.full(650, 0.5)), [0.25, 0.25])


def test_an_exact_copy_scores_zero_and_the_inputs_own_silence():
    wave = dialogue()
    scores = score_resynthesis(wave, wave.copy())
    assert scores.loudness_db == pytest.approx(0, abs=1e-9)
    assert scores.mel_db == scores.mel_speech_db == scores.mel_silence_db == 0
    assert scores.silence_db == scores.input_silence_db == pytest.approx(20 * np.log10(0.5 / 0.0001), abs=0.01)


def test_a_quieter_copy_is_measured_and_level_matched():
    wave = dialogue()
    scores = score_resynthesis(wave, 0.1 * wave)
    assert scores.loudness_db == pytest.approx(-20, abs=1e-6)
    assert scores.mel_db == pytest.approx(0, abs=1e-4)  # the distance is taken after matching the level
    assert scores.silence_db == pytest.approx(scores.input_silence_db, abs=1e-6)


def test_digital_silence_and_hiss_in_the_pauses():
    wave = dialogue()
    gated = wave.copy()
    gated[RATE : 2 * RATE] = 0
    scores = score_resynthesis(wave, gated)
    assert scores.silence_db == pytest.approx(10 * np.log10(0.5**2 / 2) + POWER_FLOOR_DB, abs=0.01)
    assert scores.mel_silence_db == 0  # the input's pause is under the 60 dB floor too
    hiss = wave.copy()
    hiss[RATE : 2 * RATE] += np.random.default_rng(0).normal(0, 0.01, (RATE, 2)).astype(np.float32)
    noisy = score_resynthesis(wave, hiss)
    assert noisy.silence_db == pytest.approx(20 * np.log10(0.5 / np.sqrt(2) / 0.01), abs=0.2)
    assert noisy.mel_silence_db > 5 and noisy.mel_speech_db < 0.5


def test_log_mel_distance_of_a_known_level_step():
    wave = tone(1, 0.5, 1000.0)
    reference = log_mel_db(wave)
    assert reference.shape == (50, 80)
    half = log_mel_db(wave * 10 ** (-6 / 20))
    # bins 6 dB above the floor (60 dB under the loudest) differ by 6 dB, floored bins by 0
    distance = mel_distance_per_frame(reference, half)[2:-2]  # frames clear of the zero padding
    floor = reference.max() - 60
    assert np.all(distance >= 6 * (reference[2:-2] > floor + 6).mean(axis=1) - 1e-4)
    assert np.all(distance <= 6 * (reference[2:-2] > floor).mean(axis=1) + 1e-4)
    assert distance.mean() > 0.1
