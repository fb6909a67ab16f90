"""How close is a resynthesis (encode + vocode) to its input? Three numbers, per stereo pair.

Frames are 20 ms (320 samples at 16 kHz, one unit). On the *input*, each channel's frames are
classed by level against that channel's loudest frame: **speech** within ``speech_within_db``
(30 dB) of it, **silence** more than ``silence_under_db`` (40 dB) under it and at least
``margin_frames`` (5, 100 ms) from any speech frame; the rest (onsets, tails) is neither.

- ``loudness_db``: output minus input active-speech level, the mean power over the input's
  speech frames of both channels (an active-speech RMS, as ITU-T P.56 measures it, with the
  speech frames chosen on the input for both), in dB. 0 is right; negative is too quiet.
- ``silence_db``: how far the output's level in the input's silence frames is under its level
  in the input's speech frames, in dB (digital silence scores ``-POWER_FLOOR_DB``).
- ``mel_db``: level-matched log-mel distance: the output is scaled by ``-loudness_db``, then
  80-band power mel spectra (1024-point FFT, 20 ms hop, 0-8 kHz) in dB, both floored at the
  input's loudest bin minus ``floor_db`` (60 dB), mean absolute difference over all frames and
  bands; also over the speech and silence frames alone. An exact copy scores 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dgslm.vocoder.mel import mel_filterbank

SAMPLE_RATE = 16_000
FRAME = 320  # 20 ms: one unit
POWER_FLOOR_DB = 120.0  # levels are floored at -120 dB (digital silence)


@dataclass(frozen=True)
class FrameClasses:
    """Boolean [frames] masks of one channel's speech and silence frames."""

    speech: np.ndarray
    silence: np.ndarray


@dataclass(frozen=True)
class ResynthesisScores:
    """The three numbers (see the module docstring) and the mel distance split by frame class."""

    loudness_db: float
    silence_db: float
    input_silence_db: float  # the same measure on the input itself, for reference
    mel_db: float
    mel_speech_db: float
    mel_silence_db: float


def to_db(power: np.ndarray | float) -> np.ndarray:
    """Power -> dB, floored at ``-POWER_FLOOR_DB``."""
    return 10 * np.log10(np.maximum(power, 10 ** (-POWER_FLOOR_DB / 10)))


def frame_power(wave: np.ndarray, frame: int = FRAME) -> np.ndarray:
    """[N] mono audio -> mean square of each whole ``frame``-sample frame [N // frame]."""
    n = len(wave) // frame
    return np.mean(np.square(wave[: n * frame].astype(np.float64)).reshape(n, frame), axis=1)


def classify_frames(
    power: np.ndarray, speech_within_db: float = 30.0, silence_under_db: float = 40.0, margin_frames: int = 5
) -> FrameClasses:
    """Speech and silence frames of one channel from its frame powers (module docstring)."""
    level = to_db(power)
    top = level.max(initial=-POWER_FLOOR_DB)
    speech = level >= top - speech_within_db
    near_speech = np.convolve(speech, np.ones(2 * margin_frames + 1), mode="same") > 0
    return FrameClasses(speech, (level < top - silence_under_db) & ~near_speech)


def masked_level_db(powers: list[np.ndarray], masks: list[np.ndarray]) -> float:
    """Mean power over the masked frames of several channels, in dB (NaN if no frame)."""
    total = sum(float(p[m].sum()) for p, m in zip(powers, masks, strict=True))
    count = sum(int(m.sum()) for m in masks)
    return float(to_db(total / count)) if count else float("nan")


def log_mel_db(wave: np.ndarray, sample_rate: int = SAMPLE_RATE, n_mels: int = 80, n_fft: int = 1024) -> np.ndarray:
    """[N] mono audio -> [N // FRAME, n_mels] power mel spectrum in dB (centred 20 ms frames)."""
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    spec = torch.stft(x, n_fft, FRAME, n_fft, torch.hann_window(n_fft), center=True, return_complex=True)
    power = mel_filterbank(sample_rate, n_fft, n_mels, 0.0, sample_rate / 2) @ spec.abs().square()
    return to_db(power.T.double().numpy())[: len(wave) // FRAME]


def mel_distance_per_frame(reference: np.ndarray, output: np.ndarray, floor_db: float = 60.0) -> np.ndarray:
    """Mean absolute dB difference per frame of two [frames, bands] dB spectra, both floored at
    the reference's loudest bin minus ``floor_db``."""
    floor = reference.max() - floor_db
    return np.abs(np.maximum(reference, floor) - np.maximum(output, floor)).mean(axis=1)


def score_resynthesis(
    reference: np.ndarray, output: np.ndarray, sample_rate: int = SAMPLE_RATE, floor_db: float = 60.0
) -> ResynthesisScores:
    """Scores of ``output`` against ``reference``, both [samples, channels] (cut to the shorter)."""
    if reference.ndim == 1:
        reference, output = reference[:, None], output[:, None]
    n = min(len(reference), len(output))
    reference, output = reference[:n], output[:n]
    channels = range(reference.shape[1])
    ref_power = [frame_power(reference[:, c]) for c in channels]
    out_power = [frame_power(output[:, c]) for c in channels]
    classes = [classify_frames(p) for p in ref_power]
    speech, silence = [k.speech for k in classes], [k.silence for k in classes]
    loudness = masked_level_db(out_power, speech) - masked_level_db(ref_power, speech)
    gain = 10 ** (-loudness / 20) if np.isfinite(loudness) else 1.0
    distances = [
        mel_distance_per_frame(log_mel_db(reference[:, c], sample_rate), log_mel_db(output[:, c] * gain, sample_rate), floor_db)
        for c in channels
    ]  # fmt: skip
    every = np.concatenate(distances)
    in_speech = np.concatenate([d[m] for d, m in zip(distances, speech, strict=True)])
    in_silence = np.concatenate([d[m] for d, m in zip(distances, silence, strict=True)])
    return ResynthesisScores(
        loudness_db=loudness,
        silence_db=masked_level_db(out_power, speech) - masked_level_db(out_power, silence),
        input_silence_db=masked_level_db(ref_power, speech) - masked_level_db(ref_power, silence),
        mel_db=float(every.mean()),
        mel_speech_db=float(in_speech.mean()) if in_speech.size else float("nan"),
        mel_silence_db=float(in_silence.mean()) if in_silence.size else float("nan"),
    )
