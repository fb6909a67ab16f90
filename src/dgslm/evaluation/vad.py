"""Voice activity of one channel: silero-vad (default) or a frame-energy detector.

Both return speech intervals as an int64 array ``[N, 2]`` of ``[start, end)`` sample indices,
sorted and disjoint.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dgslm.errors import DgslmError

if TYPE_CHECKING:  # torch is imported by silero-vad's users only: `dgslm evaluate --help` stays fast
    import torch

VAD_METHODS = ("silero", "energy")


@dataclass
class EnergyVadConfig:
    """Frame-energy detector. Frames are ``frame_ms`` long and do not overlap; a frame is speech
    when its level (dB of the mean square) is at least the channel's ``level_percentile``-th
    percentile frame level plus ``threshold_db`` (negative), and at least ``floor_db`` dBFS. Speech
    runs shorter than ``min_speech_ms`` are dropped (clicks), then the others are extended by
    ``hangover_ms`` after their end (within the file). Boundaries lie on the frame grid, so each
    is exact to within one frame, outwards."""

    frame_ms: float = 10.0
    threshold_db: float = -30.0
    level_percentile: float = 99.0
    floor_db: float = -60.0
    hangover_ms: float = 0.0
    min_speech_ms: float = 50.0


@dataclass
class SileroVadConfig:
    """silero-vad's ``get_speech_timestamps`` settings (16 kHz, 32 ms windows)."""

    threshold: float = 0.5
    min_speech_ms: int = 100
    min_silence_ms: int = 100
    speech_pad_ms: int = 30


def runs_to_intervals(active: np.ndarray) -> np.ndarray:
    """Boolean frames -> ``[N, 2]`` int64 ``[first, last + 1)`` frame indices of the True runs."""
    padded = np.concatenate([[False], np.asarray(active, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return edges.reshape(-1, 2).astype(np.int64)


def energy_vad(wave: np.ndarray, sample_rate: int, cfg: EnergyVadConfig | None = None) -> np.ndarray:
    """Speech intervals (samples) of a mono ``wave`` from frame energies relative to its own level."""
    cfg = cfg or EnergyVadConfig()
    hop = max(1, round(cfg.frame_ms * sample_rate / 1000))
    num_frames = -(-len(wave) // hop)
    frames = np.zeros(num_frames * hop, dtype=np.float64)
    frames[: len(wave)] = wave
    power = np.mean(frames.reshape(num_frames, hop) ** 2, axis=1)
    level_db = 10 * np.log10(power + 1e-12)
    threshold = max(np.percentile(level_db, cfg.level_percentile) + cfg.threshold_db, cfg.floor_db)
    runs = runs_to_intervals(level_db >= threshold)
    runs = runs[(runs[:, 1] - runs[:, 0]) >= cfg.min_speech_ms / cfg.frame_ms - 1e-9]
    hangover = round(cfg.hangover_ms / cfg.frame_ms)
    if hangover and len(runs):
        active = np.zeros(num_frames, dtype=bool)
        for start, end in runs:
            active[start : end + hangover] = True
        runs = runs_to_intervals(active)
    return np.minimum(runs * hop, len(wave))


@functools.lru_cache(maxsize=1)
def _silero() -> tuple[torch.nn.Module, Callable]:
    """silero-vad's TorchScript model from the wheel's own data folder (nothing is downloaded),
    and its ``get_speech_timestamps``."""
    import torch

    threads = torch.get_num_threads()
    from silero_vad import get_speech_timestamps, load_silero_vad  # sets torch threads to 1

    with warnings.catch_warnings():  # its loader uses deprecated importlib/jit calls
        warnings.simplefilter("ignore", DeprecationWarning)
        model = load_silero_vad()
    torch.set_num_threads(threads)
    return model, get_speech_timestamps


def silero_vad(wave: np.ndarray, sample_rate: int, cfg: SileroVadConfig | None = None) -> np.ndarray:
    """Speech intervals (samples) of a mono 16 kHz ``wave`` found by silero-vad."""
    cfg = cfg or SileroVadConfig()
    if sample_rate != 16_000:
        raise DgslmError(f"silero-vad needs 16 kHz audio, got {sample_rate} Hz")
    import torch

    model, get_speech_timestamps = _silero()
    stamps = get_speech_timestamps(
        torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)),
        model,
        threshold=cfg.threshold,
        sampling_rate=sample_rate,
        min_speech_duration_ms=cfg.min_speech_ms,
        min_silence_duration_ms=cfg.min_silence_ms,
        speech_pad_ms=cfg.speech_pad_ms,
    )
    return np.array([[s["start"], s["end"]] for s in stamps], dtype=np.int64).reshape(-1, 2)


def detect_speech(
    wave: np.ndarray, sample_rate: int, method: str = "silero", cfg: EnergyVadConfig | SileroVadConfig | None = None
) -> np.ndarray:
    """Speech intervals of a mono ``wave`` with ``method`` ("silero" or "energy")."""
    if method == "silero":
        return silero_vad(wave, sample_rate, cfg)
    if method == "energy":
        return energy_vad(wave, sample_rate, cfg)
    raise DgslmError(f"unknown VAD method {method!r} (choose from {', '.join(VAD_METHODS)})")
