"""Speech/silence smoothing of a 50 Hz unit stream.

Spectral units (log-mel/MFCC k-means with a floor) give silence one unit, but that unit also
marks every stop closure inside a word, and a stray noise frame in a pause gets a speech unit.
A frame-level dialogue LM then spends its capacity on 1-3 frame flickers, and samples cut
utterances into pieces. :func:`smooth_silence` removes both, the way a voice-activity detector
bridges short gaps: the result's silence runs are pauses and gaps, its speech runs utterances.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class SilenceSmoothing:
    """``min_silence``/``min_speech`` frames (0: off) around the unit ``silence``."""

    silence: int
    min_silence: int = 0
    min_speech: int = 0


def runs(is_silence: Tensor) -> tuple[Tensor, Tensor]:
    """Start index and length of every run of equal values of a 1-D bool tensor."""
    change = torch.ones(len(is_silence), dtype=torch.bool)
    change[1:] = is_silence[1:] != is_silence[:-1]
    starts = change.nonzero().flatten()
    lengths = torch.diff(starts, append=torch.tensor([len(is_silence)]))
    return starts, lengths


def smooth_silence(units: Tensor, cfg: SilenceSmoothing) -> Tensor:
    """[T] units with (1) silence runs shorter than ``min_silence`` frames between speech
    replaced by the unit before them, then (2) speech stretches shorter than ``min_speech``
    frames between silences replaced by silence. Runs touching either end are kept."""
    out = units.clone()
    for fill_silence, shortest in ((True, cfg.min_silence), (False, cfg.min_speech)):
        if shortest <= 0 or len(out) == 0:
            continue
        is_silence = out == cfg.silence
        starts, lengths = runs(is_silence)
        for start, length in zip(starts.tolist(), lengths.tolist()):
            inside = start > 0 and start + length < len(out)
            if not inside or length >= shortest or bool(is_silence[start]) != fill_silence:
                continue
            out[start : start + length] = out[start - 1] if fill_silence else cfg.silence
    return out
