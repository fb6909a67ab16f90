"""Audio I/O shared by every stage: read any format soundfile reads, resample with soxr,
write wavs atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dgslm.errors import DgslmError
from dgslm.fileio import atomic_path

SAMPLE_RATE = 16_000
FRAME_RATE = 50  # units per second, per channel (one per 20 ms, every unit type)
AUDIO_EXTENSIONS = ("wav", "flac", "ogg", "mp3", "opus", "aiff", "aif", "au", "sph")  # searched in folders
WRITE_BLOCK = 1 << 20  # frames per soundfile write


def load_audio(path: str | os.PathLike, sample_rate: int | None = SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """Read ``path`` as float32 ``[frames, channels]``, resampled to ``sample_rate`` (None keeps
    the file's rate). Unreadable, empty or non-audio files raise ``DgslmError`` naming the file."""
    import soundfile as sf

    try:
        wave, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise DgslmError("no such audio file", path) from None
    except Exception as err:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise DgslmError(f"cannot read audio: {str(err).splitlines()[0]}", path) from None
    if wave.shape[0] == 0:
        raise DgslmError("audio file is empty", path)
    if sample_rate is not None and file_rate != sample_rate:
        wave = resample(wave, file_rate, sample_rate)
        file_rate = sample_rate
    return np.ascontiguousarray(wave, dtype=np.float32), file_rate


def resample(wave: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample ``[frames]`` or ``[frames, channels]`` audio with soxr (high quality)."""
    import soxr

    if from_rate == to_rate:
        return wave
    return soxr.resample(wave, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def write_wav(path: str | os.PathLike, wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write ``[frames]`` or ``[frames, channels]`` float audio as 16-bit PCM wav, atomically."""
    import soundfile as sf

    path = Path(path)
    wave = np.asarray(wave, dtype=np.float32)
    channels = 1 if wave.ndim == 1 else wave.shape[1]
    with atomic_path(path) as tmp, sf.SoundFile(str(tmp), "w", sample_rate, channels, "PCM_16", format="WAV") as out:
        for start in range(0, len(wave), WRITE_BLOCK):  # in blocks: no contiguous copy of a long wave
            out.write(wave[start : start + WRITE_BLOCK])
    return path
