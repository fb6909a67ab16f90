"""The original's ``dgslm_utils`` names, so that its README's Python runs unchanged:

>>> from dgslm.dgslm_utils import HubertTokenizer, HifiganVocoder
>>> encoder = HubertTokenizer(hubert_path="hubert_fisher.pt", hubert_layer=12, km_path="hubert_fisher_km_500.bin")
>>> codes = encoder.wav2codes("dialogue.wav")  # ['7 376 376 133 ...', '7 499 415 177 ...']
>>> decoder = HifiganVocoder(vocoder_path="hifigan_vocoder", vocoder_cfg_path="config.json")
>>> wav = decoder.codes2wav(codes)  # numpy float32 [2, N], channels first

Thin aliases of :class:`~dgslm.encoder.unit_encoder.UnitEncoder` and
:class:`~dgslm.vocoder.unit_vocoder.UnitVocoder` with the original's signatures and return
types (unit strings; numpy float32 waveforms). One difference: ``use_cuda=True`` (the
original's default) runs on CUDA when there is a GPU and on the CPU otherwise, where the
original fails.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from dgslm.device import pick_device
from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.vocoder.unit_vocoder import UnitVocoder


def _device(use_cuda: bool) -> torch.device:
    return pick_device(None if use_cuda else "cpu")  # None: CUDA if available


class HubertTokenizer:
    """HuBERT features of one layer + k-means: a stereo file to one unit string per channel."""

    def __init__(
        self, hubert_path: str | os.PathLike, hubert_layer: int, km_path: str | os.PathLike, use_cuda: bool = True
    ):
        self.encoder = UnitEncoder.from_pretrained(hubert_path, km_path, layer=hubert_layer, device=_device(use_cuda))

    def wav2code(self, path: str | os.PathLike, channel_id: int = 1) -> str:
        """Units of channel ``channel_id`` (1 or 2) as "u u u" (50 Hz, no deduplication)."""
        return self.encoder.wav2code(path, channel_id)

    def wav2codes(self, path: str | os.PathLike) -> list[str]:
        """``[units of channel 1, units of channel 2]``."""
        return self.encoder.wav2codes(path)


class HifiganVocoder:
    """The unit HiFi-GAN: unit strings (or id lists) to 16 kHz waveforms as numpy arrays."""

    def __init__(self, vocoder_path: str | os.PathLike, vocoder_cfg_path: str | os.PathLike, use_cuda: bool = True):
        self.vocoder = UnitVocoder.from_pretrained(vocoder_path, vocoder_cfg_path, device=_device(use_cuda))

    def code2wav(self, code: str | Sequence[int], speaker_id: int = 0, pred_dur: bool = False) -> np.ndarray:
        """One channel -> float32 [N]."""
        return self.vocoder.code2wav(code, speaker_id, pred_dur).numpy()

    def codes2wav(
        self,
        codes: Sequence[str | Sequence[int]] | Mapping[str, str | Sequence[int]],
        speaker_ids: Sequence[int] = (0, 4),
        pred_dur: bool = False,
    ) -> np.ndarray:
        """Two channels (a list, or a dict's values in order) -> float32 [2, N], channels first."""
        return self.vocoder.codes2wav(codes, speaker_ids, pred_dur).numpy()
