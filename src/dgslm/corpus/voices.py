"""Synthetic speakers: espeak-ng voices (through libespeak-ng) and optionally flite voices (through
the ``flite`` program), text to a trimmed 16 kHz waveform, and the acoustic measures used to
check that two voices really sound different."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

from dgslm.audio import SAMPLE_RATE, resample
from dgslm.errors import DgslmError

ENGINES = ("espeak-ng", "flite")


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an engine voice with a pitch and a speaking rate.

    espeak-ng: ``name`` is a voice with an optional ``+variant`` (``en-us+f3``), ``pitch`` is
    ``-p`` (0-99) and ``speed`` is ``-s`` (words per minute). flite: ``name`` is a built-in
    voice (``slt``), ``pitch`` the target mean F0 in Hz and ``speed`` a duration stretch
    (1.0 = normal, larger = slower).
    """

    engine: str
    name: str
    pitch: float
    speed: float

    @property
    def label(self) -> str:
        return f"{self.engine}:{self.name}:p{self.pitch:g}:s{self.speed:g}"


# Curated by measuring mean F0, spectral centroid and duration of one sentence in each voice
# (see ``voice_profile``); tests/corpus/test_voices.py checks that they stay pairwise distinct.
ESPEAK_VOICES: tuple[Voice, ...] = (
    Voice("espeak-ng", "en-us+klatt", 10, 170),
    Voice("espeak-ng", "en-us", 40, 170),
    Voice("espeak-ng", "en-us+m3", 70, 160),
    Voice("espeak-ng", "en-us+m7", 55, 185),
    Voice("espeak-ng", "en-029+m4", 50, 180),
    Voice("espeak-ng", "en-gb-scotland+m1", 90, 150),
    Voice("espeak-ng", "en", 30, 190),
    Voice("espeak-ng", "en-us-nyc+Andy", 50, 210),
    Voice("espeak-ng", "en-us+f2", 60, 175),
    Voice("espeak-ng", "en-us+f3", 70, 165),
    Voice("espeak-ng", "en-us+f4", 50, 190),
    Voice("espeak-ng", "en-gb-x-rp+f5", 55, 160),
    Voice("espeak-ng", "en-gb-x-gbcwmd+Annie", 60, 170),
)

FLITE_VOICES: tuple[Voice, ...] = (
    Voice("flite", "slt", 180, 1.0),
    Voice("flite", "slt", 220, 1.1),
    Voice("flite", "rms", 100, 1.0),
    Voice("flite", "rms", 100, 0.85),
    Voice("flite", "awb", 110, 1.05),
)


def available_voices(engines: tuple[str, ...] = ("espeak-ng",)) -> tuple[Voice, ...]:
    """The built-in voices of ``engines``; raises if an engine's program is not installed."""
    voices: list[Voice] = []
    for engine in engines:
        if engine not in ENGINES:
            raise DgslmError(f"unknown speech engine {engine!r} (choose from {', '.join(ENGINES)})")
        if engine == "espeak-ng":
            _espeak()  # raises when libespeak-ng is missing
        elif shutil.which(engine) is None:
            raise DgslmError(f"the {engine} program is not installed (Debian: apt-get install {engine})")
        voices.extend(ESPEAK_VOICES if engine == "espeak-ng" else FLITE_VOICES)
    return tuple(voices)


class _Espeak:
    """libespeak-ng in synchronous mode, loaded once per process: no program start-up per
    utterance, and unknown voice names are errors instead of a silent fallback."""

    RATE, PITCH = 1, 3  # espeak_PARAMETER
    CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError:
            raise DgslmError("libespeak-ng is not installed (Debian: apt-get install espeak-ng)") from None
        self.sample_rate = self.lib.espeak_Initialize(2, 0, None, 0)  # AUDIO_OUTPUT_SYNCHRONOUS
        if self.sample_rate <= 0:
            raise DgslmError("libespeak-ng failed to initialise")
        self.chunks: list[np.ndarray] = []
        self.callback = self.CALLBACK(self._collect)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, samples, count: int, events) -> int:
        if count > 0:
            self.chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0

    def __call__(self, voice: Voice, text: str) -> tuple[np.ndarray, int]:
        if self.lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise DgslmError(f"espeak-ng has no voice {voice.name!r}")
        self.lib.espeak_SetParameter(self.RATE, int(voice.speed), 0)
        self.lib.espeak_SetParameter(self.PITCH, int(voice.pitch), 0)
        data = text.encode() + b"\0"
        self.chunks = []
        # position 0, POS_CHARACTER, no end, espeakCHARS_UTF8
        self.lib.espeak_Synth(data, len(data), 0, 1, 0, 1, None, None)
        self.lib.espeak_Synchronize()
        wave = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        return wave.astype(np.float32) / 32768.0, self.sample_rate


@functools.cache
def _espeak() -> _Espeak:
    return _Espeak()


def _flite(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    fd, tmp = tempfile.mkstemp(suffix=".wav")
    os.close(fd)
    command = [
        "flite",
        "-voice",
        voice.name,
        "--setf",
        f"int_f0_target_mean={voice.pitch:g}",
        "--setf",
        f"duration_stretch={voice.speed:g}",
        "-t",
        text,
        "-o",
        tmp,
    ]
    try:
        subprocess.run(command, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wave, rate = sf.read(tmp, dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise DgslmError("the flite program is not installed (Debian: apt-get install flite)") from None
    except subprocess.CalledProcessError as err:
        raise DgslmError(f"flite failed: {err.stderr.decode(errors='replace').strip()}") from None
    finally:
        os.unlink(tmp)
    return wave[:, 0], rate


def trim_silence(wave: np.ndarray, threshold: float = 1e-3) -> np.ndarray:
    """Drop leading and trailing samples whose magnitude stays below ``threshold``."""
    loud = np.flatnonzero(np.abs(wave) > threshold)
    if loud.size == 0:
        return wave[:0]
    return wave[loud[0] : loud[-1] + 1]


def synthesize(voice: Voice, text: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``text`` spoken by ``voice``: mono float32 at ``sample_rate``, silence trimmed at both
    ends and scaled to a peak of 1 (levels are set when mixing)."""
    wave, rate = _espeak()(voice, text) if voice.engine == "espeak-ng" else _flite(voice, text)
    wave = trim_silence(resample(wave, rate, sample_rate))
    if wave.size == 0:
        raise DgslmError(f"{voice.label} produced no sound for {text!r}")
    return (wave / np.abs(wave).max()).astype(np.float32)


def mean_f0(wave: np.ndarray, sample_rate: int = SAMPLE_RATE, fmin: float = 50.0, fmax: float = 400.0) -> float:
    """Mean fundamental frequency (Hz) over voiced 40 ms frames, by normalised autocorrelation."""
    frame, hop = int(0.04 * sample_rate), int(0.01 * sample_rate)
    lo, hi = int(sample_rate / fmax), int(sample_rate / fmin)
    energy_floor = 0.05 * np.sqrt(np.mean(wave**2))
    f0s = []
    for start in range(0, len(wave) - frame, hop):
        x = wave[start : start + frame] - wave[start : start + frame].mean()
        if np.sqrt(np.mean(x**2)) < energy_floor:
            continue
        ac = np.correlate(x, x, mode="full")[frame - 1 :]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:  # clearly periodic: voiced
            f0s.append(sample_rate / lag)
    return float(np.mean(f0s)) if f0s else 0.0


def spectral_centroid(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Centroid (Hz) of the long-term power spectrum."""
    power = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / sample_rate)
    return float((freqs * power).sum() / power.sum())


def voice_profile(voice: Voice, text: str) -> np.ndarray:
    """``[mean F0, spectral centroid, duration]`` of ``text`` in ``voice``."""
    wave = synthesize(voice, text)
    return np.array([mean_f0(wave), spectral_centroid(wave), len(wave) / SAMPLE_RATE])


def same_voice(a: np.ndarray, b: np.ndarray, tolerance: float = 0.03) -> bool:
    """Two profiles are the same voice when every measure differs by less than ``tolerance``
    (relative)."""
    return bool(np.all(np.abs(a - b) <= tolerance * np.maximum(np.abs(a), np.abs(b))))
