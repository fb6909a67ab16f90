"""Voice activity: the energy detector's documented rules, and silero-vad on real speech."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dialogue_signals import SR, bursts

from dgslm.audio import load_audio
from dgslm.errors import DgslmError
from dgslm.evaluation.dialogues import EvaluationConfig, analyse
from dgslm.evaluation.vad import EnergyVadConfig, detect_speech, energy_vad, runs_to_intervals, silero_vad


def seconds(intervals: np.ndarray) -> list[list[float]]:
    return (intervals / SR).round(4).tolist()


def test_runs_to_intervals():
    active = np.array([1, 1, 0, 0, 1, 0, 1], dtype=bool)
    assert runs_to_intervals(active).tolist() == [[0, 2], [4, 5], [6, 7]]
    assert runs_to_intervals(np.zeros(3, dtype=bool)).shape == (0, 2)


def test_energy_threshold_is_relative_to_the_channel_level():
    wave = bursts([(1.0, 2.0), (3.0, 3.5)], 5.0, seed=0)
    loud = energy_vad(wave, SR)
    assert seconds(loud) == [[1.0, 2.0], [3.0, 3.5]]
    np.testing.assert_array_equal(energy_vad(wave * 0.05, SR), loud)  # 26 dB quieter, same speech
    # a second burst 34 dB below the first is under the default -30 dB threshold
    wave[round(3.0 * SR) : round(3.5 * SR)] *= 0.02
    assert seconds(energy_vad(wave, SR)) == [[1.0, 2.0]]
    assert seconds(energy_vad(wave, SR, EnergyVadConfig(threshold_db=-40))) == [[1.0, 2.0], [3.0, 3.5]]


def test_energy_floor_short_runs_and_hangover():
    assert energy_vad(np.zeros(SR, dtype=np.float32), SR).shape == (0, 2)  # digital silence
    assert energy_vad(1e-4 * np.ones(SR, dtype=np.float32), SR).shape == (0, 2)  # -80 dBFS, below the floor
    wave = bursts([(0.5, 0.53), (1.0, 1.5)], 2.0, seed=0)  # a 30 ms click, then speech
    assert seconds(energy_vad(wave, SR)) == [[1.0, 1.5]]
    assert seconds(energy_vad(wave, SR, EnergyVadConfig(min_speech_ms=20))) == [[0.5, 0.53], [1.0, 1.5]]
    assert seconds(energy_vad(wave, SR, EnergyVadConfig(hangover_ms=40))) == [[1.0, 1.54]]
    end = bursts([(1.9, 2.0)], 2.0, seed=0)  # hangover stops at the end of the file
    assert seconds(energy_vad(end, SR, EnergyVadConfig(hangover_ms=40))) == [[1.9, 2.0]]


def test_silero_finds_real_speech_and_ignores_noise_and_tones(reference):
    """Channel A: LibriSpeech speech from 2 s; channel B: noise bursts and a 1 kHz tone, which the
    energy detector takes for speech and silero-vad does not."""
    speech, sr = load_audio(reference / "audio" / "ls.flac")
    assert sr == SR
    wave = np.zeros((16 * SR, 2), dtype=np.float32)
    wave[2 * SR : 2 * SR + len(speech), 0] = speech[:, 0]
    wave[:, 1] = bursts([(1.0, 3.0), (9.0, 10.0)], 16.0, seed=3)
    wave[5 * SR : 7 * SR, 1] += 0.3 * np.sin(2 * np.pi * 1000 * np.arange(2 * SR) / SR)
    threads = torch.get_num_threads()
    found = silero_vad(wave[:, 0], SR)
    assert torch.get_num_threads() == threads  # importing silero-vad must not change it for us
    energy = energy_vad(wave[:, 0], SR)
    assert len(found) >= 1
    # silero's speech lies around the energy detector's, within its 30 ms padding + 32 ms windows
    assert found[0, 0] / SR == pytest.approx(energy[0, 0] / SR, abs=0.1)
    assert found[-1, 1] / SR == pytest.approx(energy[-1, 1] / SR, abs=0.3)
    covered = np.sum(found[:, 1] - found[:, 0]) / (energy[-1, 1] - energy[0, 0])
    assert covered > 0.9
    assert silero_vad(wave[:, 1], SR).shape == (0, 2)
    assert len(energy_vad(wave[:, 1], SR)) == 3
    events = analyse(wave, SR, EvaluationConfig(vad="silero"))
    assert len(events.ipus[0]) >= 1 and len(events.ipus[1]) == 0 and len(events.gaps) == 0


def test_vad_errors():
    with pytest.raises(DgslmError, match="unknown VAD"):
        detect_speech(np.zeros(100, dtype=np.float32), SR, "webrtc")
    with pytest.raises(DgslmError, match="16 kHz"):
        silero_vad(np.zeros(8000, dtype=np.float32), 8000)
    with pytest.raises(DgslmError, match="stereo"):
        analyse(np.zeros((SR, 1), dtype=np.float32), SR, EvaluationConfig(vad="energy"))
