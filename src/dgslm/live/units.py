"""Streaming units of the person's channel: one 20 ms frame of audio in, at most one unit out.

Unit frame t covers samples ``[320 t, 320 t + 400)`` (the offline grid, see
:mod:`dgslm.encoder.features`), so it can be computed once the first 80 samples of frame t + 1
have arrived. ``lookahead`` more frames are waited for before frame t's unit is final:

- frame-local features (the demo's log-mel): the features need no look-ahead; the look-ahead
  goes to the silence smoothing of :mod:`dgslm.units.smoothing` (which bridges short silences
  and drops short bursts, so it must see a few frames ahead). Offline and streaming units are
  equal once ``lookahead >= (min_silence - 1) + (min_speech - 1)`` (6 frames for the demo);
- windowed features (HuBERT: a transformer over its input with a convolutional positional
  embedding; MFCC: deltas): each unit is computed from a window of ``context`` frames on the
  left and ``lookahead`` frames on the right; the units then differ from a whole-file pass
  on some frames (see ``docs/live.md`` for the measured agreement). Smoothing, if any, is
  then causal (it sees no frame ahead).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from dgslm.encoder.features import HOP, WINDOW, LogMelFeatures
from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.units.smoothing import smooth_silence

SMOOTHING_SPAN = 64  # raw units kept for the smoothing: runs longer than this are never changed


def exact_lookahead(encoder: UnitEncoder) -> int | None:
    """Look-ahead (frames) that makes streaming units equal offline ones, None if none does."""
    if not isinstance(encoder.reader, LogMelFeatures):
        return None
    if encoder.smoothing is None:
        return 0
    return max(encoder.smoothing.min_silence - 1, 0) + max(encoder.smoothing.min_speech - 1, 0)


class StreamingUnits:
    """Push 320-sample frames of 16 kHz audio; get the person's units ``1 + lookahead`` frames later."""

    def __init__(self, encoder: UnitEncoder, lookahead: int = 0, context: int = 50):
        if lookahead < 0 or context < 0:
            raise ValueError(f"look-ahead and context must be >= 0, got {lookahead} and {context}")
        self.encoder = encoder
        self.lookahead = lookahead
        self.frame_local = isinstance(encoder.reader, LogMelFeatures)
        self.feature_lookahead = 0 if self.frame_local else lookahead
        self.smooth_lookahead = lookahead if self.frame_local else 0
        self.context = 0 if self.frame_local else context
        frames = self.context + self.feature_lookahead + 1
        self.audio: deque[np.ndarray] = deque(maxlen=frames + 1)  # the window of the newest unit + 80 samples
        self.raw: deque[int] = deque(maxlen=SMOOTHING_SPAN + self.smooth_lookahead + 1)
        self.reset()

    def reset(self) -> None:
        self.audio.clear()
        self.raw.clear()
        self.pushed = 0  # audio frames received
        self.emitted = 0  # final units given out

    @property
    def delay(self) -> int:
        """Frames between receiving audio frame t and giving out unit t."""
        return 1 + self.lookahead

    @torch.inference_mode()
    def push(self, pcm: np.ndarray) -> int | None:
        """One frame of audio (320 float32 samples) -> the next final unit, or None while warming up."""
        self.audio.append(np.asarray(pcm, dtype=np.float32))
        self.pushed += 1
        newest = self.pushed - 2 - self.feature_lookahead  # unit frame whose window is now complete
        if newest < 0:
            return None
        self.raw.append(self._unit(newest))
        final = newest - self.smooth_lookahead
        if final < 0:
            return None
        self.emitted += 1
        if self.encoder.smoothing is None:
            return self.raw[-1 - self.smooth_lookahead]
        start = newest + 1 - len(self.raw)  # frame of self.raw[0]
        smoothed = smooth_silence(torch.tensor(list(self.raw)), self.encoder.smoothing)
        return int(smoothed[final - start])

    def _unit(self, frame: int) -> int:
        """Unit of ``frame``: from its own 400 samples, or from a window around it."""
        audio = np.concatenate(self.audio)
        end_frame = frame + self.feature_lookahead  # last unit frame of the window
        first = max(0, end_frame - self.feature_lookahead - self.context)
        offset = (self.pushed - len(self.audio)) * HOP  # sample index of audio[0]
        window = audio[first * HOP - offset : end_frame * HOP + WINDOW - offset]
        units = self.encoder.quantizer(self.encoder.reader(torch.from_numpy(window)[None].to(self.encoder.device)))
        return int(units[0, frame - first])
