"""Streaming vocoder: the model's units to audio, one 20 ms frame at a time.

The unit HiFi-GAN is a stack of non-causal convolutions: one frame's audio depends on about
20 units on either side, with an influence that fades fast. Two ways to stream it, chosen by
the look-ahead:

- ``lookahead >= exact_lookahead`` (21 units for the released configuration and the demo):
  :class:`~dgslm.vocoder.streaming.StreamingGenerator`, every layer with its own cached left
  context, one frame of compute per unit through each layer; the stream *is* offline vocoding
  (up to float rounding), at the price of 420 ms of latency;
- shorter look-aheads (the live default, 2 units): each new unit, the generator runs on a
  window of ``context`` units cached on the left, the frame, and ``lookahead`` on the right,
  and keeps the frame's ``hop`` samples (computing, stage by stage, only the samples those
  depend on: :func:`~dgslm.vocoder.streaming.frame_crops`). After ``context`` frames of warm-up the stream equals
  offline vocoding within the error measured in ``docs/live.md`` (the tests hold it to that
  tolerance). A layer-by-layer stream with a short look-ahead (zeros for the samples not yet
  there) was measured far worse than this window at every look-ahead under 12 units.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from dgslm.vocoder.streaming import StreamingGenerator, exact_lookahead, frame_crops
from dgslm.vocoder.unit_vocoder import UnitVocoder


class StreamingVocoder:
    """:meth:`push` one unit per frame; get the audio of the frame ``lookahead`` units back."""

    def __init__(self, vocoder: UnitVocoder, speaker: int = 0, context: int = 4, lookahead: int = 2):
        """``context``: units behind the frame in a window (unused by an exact stream, which
        keeps the whole left context)."""
        if context < 0 or lookahead < 0:
            raise ValueError(f"context and look-ahead must be >= 0, got {context} and {lookahead}")
        self.vocoder = vocoder
        self.hop = vocoder.cfg.hop_size
        self.context, self.lookahead = context, lookahead
        self.speaker = vocoder.speaker_tensor([speaker])
        self.stream = StreamingGenerator(vocoder.generator) if lookahead >= exact_lookahead(vocoder.generator) else None
        self.units: deque[int] = deque(maxlen=context + 1 + lookahead)
        self.crops: dict[tuple[int, int], tuple[list[tuple[slice, slice]], slice]] = {}  # frame_crops per window
        self.reset()

    @property
    def exact(self) -> bool:
        """Whether the stream is offline vocoding (a layer-by-layer stream, no window)."""
        return self.stream is not None

    def reset(self) -> None:
        self.units.clear()
        self.pending: list[int] = []  # units of skipped frames, not yet through an exact stream
        self.audio = np.zeros(0, dtype=np.float32)  # an exact stream's samples not yet returned
        self.pushed = 0
        if self.stream is not None:
            self.stream.reset()

    @torch.inference_mode()
    def push(self, unit: int) -> np.ndarray | None:
        """Add the next unit; return the ``hop`` samples of frame ``pushed - 1 - lookahead``
        (None during the first ``lookahead`` frames)."""
        self.skip(unit)
        frame = self.pushed - 1 - self.lookahead
        if self.stream is not None:
            return self._stream(frame)
        if frame < 0:
            return None
        at = len(self.units) - 1 - self.lookahead  # the frame's index in the window
        key = (len(self.units), at)
        if key not in self.crops:  # a few keys: the window grows to its size in the first frames
            self.crops[key] = frame_crops(self.vocoder.generator, *key)
        crops, samples = self.crops[key]
        with self._autocast():
            x = self.vocoder.generator.conditioning(self._code(self.units), self.speaker)
            wave = self.vocoder.generator.decode(x, crops)[0, 0, samples]
        return self._output(wave.float().cpu(), at)

    def skip(self, unit: int) -> None:
        """Add the next unit without synthesising (a frame skipped to catch up). An exact stream
        runs the skipped units with the next :meth:`push`, in one call (its state must see them)."""
        self.units.append(int(unit))
        if self.stream is not None:
            self.pending.append(int(unit))
        self.pushed += 1

    def _stream(self, frame: int) -> np.ndarray | None:
        """Run the pending units through the exact stream; the samples of ``frame``, if any."""
        with self._autocast():
            cond = self.vocoder.generator.conditioning(self._code(self.pending), self.speaker)
            wave = self.stream.step(cond)[0].float().cpu().numpy()
        self.pending.clear()
        self.audio = np.concatenate([self.audio, wave])
        if frame < 0:
            return None
        start = len(self.audio) - (self.pushed * self.hop - self.stream.delay - frame * self.hop)
        out = self.audio[start : start + self.hop]
        self.audio = self.audio[start + self.hop :]
        return self._output(torch.from_numpy(out), len(self.units) - 1 - self.lookahead)

    def _output(self, wave: torch.Tensor, at: int) -> np.ndarray:
        """The vocoder's output stage (gain, silence gate) on the samples of the window's unit ``at``
        (the gate fades over the units around it, as offline)."""
        window = torch.zeros(1, len(self.units) * self.hop)
        window[0, at * self.hop : (at + 1) * self.hop] = wave
        code = torch.tensor(list(self.units))
        return self.vocoder.output_stage.apply(window, [code], self.hop)[0, at * self.hop : (at + 1) * self.hop].numpy()

    def _code(self, units) -> torch.Tensor:
        return torch.tensor(list(units), dtype=torch.long, device=self.vocoder.device)[None]

    def _autocast(self) -> torch.autocast:
        dtype = self.vocoder.autocast_dtype
        return torch.autocast(self.vocoder.device.type, dtype or torch.float32, enabled=dtype is not None)
