"""Stereo dialogues to evaluate: audio files, folders of them, or code files vocoded on the fly."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dgslm.audio import SAMPLE_RATE, load_audio
from dgslm.errors import DgslmError
from dgslm.evaluation.turn_taking import DialogueEvents, find_events
from dgslm.evaluation.vad import EnergyVadConfig, SileroVadConfig, detect_speech

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclass
class EvaluationConfig:
    """How dialogues are analysed."""

    vad: str = "silero"
    min_silence: float = 0.2  # seconds of silence that separate two IPUs of one channel
    energy: EnergyVadConfig | None = None
    silero: SileroVadConfig | None = None


def analyse(wave: np.ndarray, sample_rate: int, cfg: EvaluationConfig, name: str = "", path=None) -> DialogueEvents:
    """Turn-taking events of a stereo ``[frames, 2]`` waveform."""
    if wave.ndim != 2 or wave.shape[1] != 2:
        channels = 1 if wave.ndim == 1 else wave.shape[1]
        raise DgslmError(f"expected a stereo dialogue (2 channels), got {channels} channel(s)", path)
    vad_cfg = cfg.energy if cfg.vad == "energy" else cfg.silero
    speech = tuple(detect_speech(wave[:, c], sample_rate, cfg.vad, vad_cfg) for c in (0, 1))
    return find_events(speech, len(wave), sample_rate, cfg.min_silence, name)


def find_inputs(paths: Sequence[str | os.PathLike]) -> list[tuple[str, Path]]:
    """``(name, path)`` for each input: files as given, folders searched recursively for audio.
    Names are file stems, or paths relative to the folder (``/`` -> ``__``) without suffix."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not files:
                raise DgslmError("no audio files (wav, flac, ogg, mp3) in this folder", path)
            found += [("__".join(p.relative_to(path).with_suffix("").parts), p) for p in files]
        elif path.is_file():
            found.append((path.stem, path))
        else:
            raise DgslmError("no such file or folder", path)
    return found


def iter_dialogues(
    paths: Sequence[str | os.PathLike], vocoder=None, speaker_ids: Sequence[int] = (0, 4)
) -> Iterator[tuple[str, np.ndarray, int, Path]]:
    """``(name, wave [frames, 2], sample_rate, source path)`` for every dialogue. Non-audio files
    are code files, vocoded with ``vocoder`` (a ``UnitVocoder``), one dialogue per record."""
    for name, path in find_inputs(paths):
        if path.suffix.lower() in AUDIO_SUFFIXES:
            wave, sr = load_audio(path, SAMPLE_RATE)
            yield name, wave, sr, path
            continue
        if vocoder is None:
            raise DgslmError("not an audio file; pass --vocoder and --vocoder-cfg to evaluate a code file", path)
        from dgslm.units.codes import iter_code_file

        for line, record in iter_code_file(path):
            channels = [record[k] for k in sorted(record) if k != "audio"]
            if len(channels) != 2:
                raise DgslmError(f"expected 2 unit channels, got {len(channels)}", path, line)
            wave = vocoder.stereo(channels, speaker_ids, path=path, line=line).numpy()
            yield (
                f"{name}__{Path(record['audio']).stem if 'audio' in record else line}",
                wave,
                vocoder.sample_rate,
                path,
            )
