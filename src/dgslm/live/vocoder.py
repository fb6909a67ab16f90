"""Streaming vocoder: the model's units to audio, one 20 ms frame at a time.

The unit HiFi-GAN is a stack of non-causal convolutions: one frame's audio depends on about
20 units on either side, with an influence that fades fast. Each new unit, the generator runs
on a short window of units, ``context`` cached on the left, the frame, and ``lookahead`` on
the right, and keeps the frame's ``hop`` samples. After ``context`` frames of warm-up the
stream equals offline vocoding of the same units within the error measured in
``docs/live.md`` (the tests hold it to that tolerance); it is exact only for a window that
covers the whole receptive field.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from dgslm.vocoder.unit_vocoder import UnitVocoder


class StreamingVocoder:
    """:meth:`push` one unit per frame; get the audio of the frame ``lookahead`` units back."""

    def __init__(self, vocoder: UnitVocoder, speaker: int = 0, context: int = 4, lookahead: int = 2):
        if context < 0 or lookahead < 0:
            raise ValueError(f"context and look-ahead must be >= 0, got {context} and {lookahead}")
        self.vocoder = vocoder
        self.hop = vocoder.cfg.hop_size
        self.context, self.lookahead = context, lookahead
        self.speaker = vocoder.speaker_tensor([speaker])
        self.units: deque[int] = deque(maxlen=context + 1 + lookahead)
        self.reset()

    def reset(self) -> None:
        self.units.clear()
        self.pushed = 0

    @torch.inference_mode()
    def push(self, unit: int) -> np.ndarray | None:
        """Add the next unit; return the ``hop`` samples of frame ``pushed - 1 - lookahead``
        (None during the first ``lookahead`` frames)."""
        self.units.append(int(unit))
        self.pushed += 1
        frame = self.pushed - 1 - self.lookahead
        if frame < 0:
            return None
        code = torch.tensor(list(self.units), dtype=torch.long, device=self.vocoder.device)[None]
        at = len(self.units) - 1 - self.lookahead  # the frame's index in the window
        autocast_dtype = self.vocoder.autocast_dtype
        with torch.autocast(self.vocoder.device.type, autocast_dtype or torch.float32,
                            enabled=autocast_dtype is not None):  # fmt: skip
            wave = self.vocoder.generator(code, self.speaker).float().cpu()
        wave = self.vocoder.output_stage.apply(wave, [code[0].cpu()], self.hop)[0]  # gain, silence gate
        return wave[at * self.hop : (at + 1) * self.hop].numpy()

    def skip(self, unit: int) -> None:
        """Add the next unit without synthesising (a frame skipped to catch up)."""
        self.units.append(int(unit))
        self.pushed += 1
