"""What a vocoder config asks to be done to the generator's output: a calibrated gain, and a
silence gate that turns the frames of the silence unit into digital silence with short
raised-cosine fades, so that a vocoder's noise floor (a hiss band through every pause) is not heard.

Keys of ``config.json`` (a released vocoder's config has none, and decodes exactly as before):
``"output_gain_db"`` (default 0), ``"silence_unit"`` (the unit of digital silence under the
encoder's k-means, see ``UnitEncoder.silence_unit``; default: no gate) and ``"silence_fade_ms"``
(default 20).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

DEFAULT_FADE_MS = 20.0
MAX_GAIN_DB = 60.0


@dataclass(frozen=True)
class OutputStage:
    """Gain ``gain_db``; frames of ``silence_unit`` (None: none) gated, audio within
    ``fade_samples`` of speech fading out smoothly."""

    gain_db: float = 0.0
    silence_unit: int | None = None
    fade_samples: int = 0

    @classmethod
    def from_config(cls, extra: dict[str, Any], sample_rate: int) -> OutputStage:
        """The stage a vocoder config's extra keys ask for; ValueError on bad values."""
        gain_db = extra.get("output_gain_db", 0.0)
        if isinstance(gain_db, bool) or not isinstance(gain_db, int | float) or not abs(gain_db) <= MAX_GAIN_DB:
            raise ValueError(f"output_gain_db must be a number of dB in [-60, 60], got {gain_db!r}")
        unit = extra.get("silence_unit")
        fade_ms = extra.get("silence_fade_ms", DEFAULT_FADE_MS)
        if unit is not None and (isinstance(unit, bool) or not isinstance(unit, int) or unit < 0):
            raise ValueError(f"silence_unit must be a unit id, got {unit!r}")
        if isinstance(fade_ms, bool) or not isinstance(fade_ms, int | float) or not 0 <= fade_ms <= 1000:
            raise ValueError(f"silence_fade_ms must be a number of ms in [0, 1000], got {fade_ms!r}")
        return cls(float(gain_db), unit, round(fade_ms * sample_rate / 1000))

    def gate(self, code: torch.Tensor, hop: int) -> torch.Tensor:
        """[U] units -> [U * hop] gain: 1 in speech frames, falling as a raised cosine to 0 over
        ``fade_samples`` into each silence run (and rising likewise before the next speech)."""
        speech = (code != self.silence_unit).repeat_interleave(hop)
        where = torch.nonzero(speech).flatten()
        if where.numel() == 0:
            return torch.zeros(speech.shape)
        position = torch.arange(speech.numel(), device=code.device)
        after = torch.searchsorted(where, position).clamp(max=where.numel() - 1)
        before = (after - 1).clamp(min=0)
        distance = torch.minimum((where[after] - position).abs(), (position - where[before]).abs()).float()
        ramp = (distance / max(self.fade_samples, 1)).clamp(max=1.0)
        return (0.5 * (1 + torch.cos(torch.pi * ramp))).cpu()

    def apply(self, waves: torch.Tensor, codes: Sequence[torch.Tensor] | None, hop: int) -> torch.Tensor:
        """[C, N] CPU audio of the [U] unit sequences ``codes`` (None: not frame-aligned, no
        gate) -> the output; samples beyond ``U * hop`` are left as they are."""
        if self.silence_unit is not None and codes is not None:
            gated = []
            for wave, code in zip(waves, codes, strict=True):
                gain = self.gate(code, hop)[: wave.numel()]
                gated.append(torch.cat([wave[: gain.numel()] * gain, wave[gain.numel() :]]))
            waves = torch.stack(gated)
        return waves * 10 ** (self.gain_db / 20) if self.gain_db else waves
