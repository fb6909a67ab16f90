"""Vocoder training data: each channel of each dialogue in a code file, with its audio channel.

As in speech-resynthesis: audio peak-normalised to 0.95 (``peak_normalize=False`` keeps the
recordings' own level, so that the vocoder learns it; config key ``peak_normalize``), audio and units cut to a common
length (``hop`` samples per unit), items shorter than a segment tiled, and each step draws
random unit-aligned segments. Batches are a pure function of (seed, step, rank), so a
resumed run sees exactly the data it would have seen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dgslm.audio import AUDIO_EXTENSIONS, load_audio
from dgslm.errors import DgslmError
from dgslm.units.codes import iter_code_file


@dataclass
class VocoderItem:
    wave: torch.Tensor  # [n_units * hop] float32
    code: torch.Tensor  # [n_units] int64
    speaker: int
    name: str


class VocoderDataset:
    """(units, audio, speaker) training items of a code file, one per unit channel."""

    def __init__(
        self,
        code_file: str | os.PathLike,
        audio_root: str | os.PathLike | None = None,
        channels: tuple[str, ...] = ("unitA", "unitB"),
        speakers: tuple[int, ...] | None = None,
        hop: int = 320,
        sample_rate: int = 16_000,
        num_embeddings: int | None = None,
        peak_normalize: bool = True,
    ):
        """``audio`` paths in the code file are taken relative to ``audio_root`` (default: the
        code file's folder); unit channel ``i`` pairs with audio channel ``i``; ``speakers``
        gives a speaker id per channel (None: single-speaker)."""
        root = Path(audio_root) if audio_root is not None else Path(code_file).parent
        self.items: list[VocoderItem] = []
        for line, record in iter_code_file(code_file):
            if "audio" not in record:
                raise DgslmError("code line has no 'audio' key (needed for training)", code_file, line)
            path = root / record["audio"]
            if not path.exists():  # `dgslm encode` writes the file name without its extension
                path = next((p for ext in AUDIO_EXTENSIONS if (p := root / f"{record['audio']}.{ext}").is_file()), path)
            audio, _ = load_audio(path, sample_rate)
            if audio.shape[1] < len(channels):
                raise DgslmError(f"{audio.shape[1]} audio channel(s) for {len(channels)} unit channels", path)
            for c, channel in enumerate(channels):
                if channel not in record:
                    raise DgslmError(f"no channel {channel!r}", code_file, line)
                try:
                    code = torch.tensor([int(u) for u in record[channel].split()], dtype=torch.long)
                except ValueError:
                    raise DgslmError(f"channel {channel!r} has non-integer units", code_file, line) from None
                if code.numel() == 0 or code.min() < 0 or (num_embeddings is not None and code.max() >= num_embeddings):
                    raise DgslmError(
                        f"channel {channel!r}: units must be in [0, {num_embeddings}) and non-empty", code_file, line
                    )
                wave = audio[:, c]
                peak = float(np.abs(wave).max())
                wave = wave / peak * 0.95 if peak > 0 and peak_normalize else wave
                n = min(code.numel(), len(wave) // hop)
                if n == 0:
                    raise DgslmError(f"audio shorter than one unit ({hop} samples)", path)
                self.items.append(
                    VocoderItem(torch.from_numpy(wave[: n * hop].copy()), code[:n], speakers[c] if speakers else 0, f"{Path(record['audio']).stem}:{channel}")
                )  # fmt: skip
        if not self.items:
            raise DgslmError("no training items", code_file)
        self.hop = hop

    def __len__(self) -> int:
        return len(self.items)

    def batch(
        self, step: int, batch_size: int, segment_units: int, seed: int, rank: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Random segments for ``step``: audio [B, segment_units * hop], units [B, segment_units], speakers [B]."""
        rng = np.random.default_rng([seed, step, rank])
        waves, codes, speakers = [], [], []
        for index in rng.integers(len(self.items), size=batch_size):
            item = self.items[index]
            code, wave = item.code, item.wave
            if code.numel() < segment_units:  # tile short items
                reps = -(-segment_units // code.numel())
                code, wave = code.repeat(reps), wave.repeat(reps)
            start = int(rng.integers(code.numel() - segment_units + 1))
            codes.append(code[start : start + segment_units])
            waves.append(wave[start * self.hop : (start + segment_units) * self.hop])
            speakers.append(item.speaker)
        return torch.stack(waves), torch.stack(codes), torch.tensor(speakers)
