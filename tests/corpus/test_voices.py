"""Voices: synthesis output, and that the built-in voices really sound different."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dgslm.audio import SAMPLE_RATE
from dgslm.corpus.voices import ESPEAK_VOICES, FLITE_VOICES, Voice, mean_f0, same_voice, synthesize, voice_profile
from dgslm.errors import DgslmError

SENTENCES = (
    "Well, I was thinking about going to the beach this weekend, but the weather looks pretty bad.",
    "Oh really? My sister told me the new restaurant downtown is great.",
)


def test_synthesize_gives_trimmed_16k_mono():
    wave = synthesize(ESPEAK_VOICES[0], "Hello there, how are you doing?")
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 0.8 * SAMPLE_RATE < len(wave) < 4 * SAMPLE_RATE
    assert np.abs(wave).max() == 1.0
    assert abs(wave[0]) > 1e-3 and abs(wave[-1]) > 1e-3  # silence trimmed at both ends


def test_mean_f0_of_a_periodic_signal():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    wave = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6))
    assert abs(mean_f0(wave) - 140) < 3


def test_same_voice_compares_profiles():
    a = voice_profile(Voice("espeak-ng", "en-us+f3", 50, 170), SENTENCES[0])
    b = voice_profile(Voice("espeak-ng", "en-us+f3", 51, 170), SENTENCES[0])
    c = voice_profile(Voice("espeak-ng", "en-us+m3", 50, 170), SENTENCES[0])
    assert same_voice(a, b)
    assert not same_voice(a, c)


def test_unknown_voice_is_an_error():
    # the espeak-ng program silently falls back to its default voice for names like these
    with pytest.raises(DgslmError, match="no voice 'en-gb\\+f1'"):
        synthesize(Voice("espeak-ng", "en-gb+f1", 50, 170), "hello")


def test_builtin_voices_are_pairwise_distinct():
    voices = ESPEAK_VOICES + FLITE_VOICES
    assert len(set(voices)) == len(voices)
    for text in SENTENCES:
        profiles = [voice_profile(v, text) for v in voices]
        for (va, pa), (vb, pb) in itertools.combinations(zip(voices, profiles), 2):
            assert not same_voice(pa, pb, tolerance=0.05), f"{va.label} sounds like {vb.label}: {pa} vs {pb}"
