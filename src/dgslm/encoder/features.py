"""Frame features at 50 Hz for k-means units: HuBERT layer L, log-mel or MFCC.

Every reader maps a 16 kHz waveform [B, N] to [B, T, D] with the HuBERT frame grid
(25 ms windows every 20 ms, T = (N - 400) // 320 + 1), so units of any type line up with
HuBERT units and with the 50 Hz SpeechDLM/vocoder frame rate. Log-mel and MFCC need no
pretrained weights.
"""

from __future__ import annotations

import math
import os
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from dgslm.audio import SAMPLE_RATE
from dgslm.encoder.hubert import MAX_CHUNK, Hubert
from dgslm.errors import DgslmError
from dgslm.model_folder import DEFAULT_LAYER

FEATURE_TYPES = ("hubert", "logmel", "mfcc")
WINDOW, HOP, N_FFT = 400, 320, 512
FLOOR_DB = 50.0  # log-mel floor below a full-scale 1 kHz tone: the synthetic corpus's -55 dBFS noise is under it


class FeatureReader(Protocol):
    dim: int
    min_samples: int

    def __call__(self, wave: Tensor) -> Tensor: ...


class HubertFeatures:
    """Layer-``layer`` HuBERT features, chunked at 1.6M samples as the original reader."""

    def __init__(
        self,
        model: Hubert,
        layer: int = DEFAULT_LAYER,
        max_chunk: int = MAX_CHUNK,
        autocast_dtype: torch.dtype | None = None,
        streaming: tuple[int, int] | None = None,
    ):
        model.check_layer(layer)
        self.model, self.layer, self.max_chunk = model, layer, max_chunk
        self.autocast_dtype = autocast_dtype  # bf16/fp16 autocast: faster, units may differ on near-ties
        self.streaming = streaming  # (new frames, left-context frames) per window; None = the original's passes
        self.dim = model.cfg.embed_dim
        self.min_samples = model.receptive_field

    def __call__(self, wave: Tensor) -> Tensor:
        device = next(self.model.parameters()).device
        wave = wave.to(device)
        with torch.autocast(device.type, self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None):
            if self.streaming is not None:
                feats = self.model.extract_streaming(wave, self.layer, *self.streaming)
            else:
                feats = self.model.extract_features(wave, self.layer, self.max_chunk)
        return feats.float()


def mel_filterbank(n_mels: int, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE, low: float = 20.0) -> Tensor:
    """Triangular filters on the HTK mel scale, [n_fft // 2 + 1, n_mels]."""
    mel = lambda f: 1127.0 * math.log1p(f / 700.0)  # noqa: E731
    edges = torch.linspace(mel(low), mel(sample_rate / 2), n_mels + 2, dtype=torch.float64)
    bins = 1127.0 * torch.log1p(torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64) / 700.0)
    left, center, right = edges[:-2], edges[1:-1], edges[2:]
    up = (bins[:, None] - left) / (center - left)
    down = (right - bins[:, None]) / (right - center)
    return torch.clamp(torch.minimum(up, down), min=0).float()


def power_spectrum(wave: Tensor) -> Tensor:
    """[B, N] -> [B, T, N_FFT // 2 + 1]: 25 ms Povey-window frames every 20 ms with DC removal
    and pre-emphasis 0.97 (Kaldi-style), no padding at the edges."""
    frames = wave.float().unfold(-1, WINDOW, HOP)
    frames = frames - frames.mean(-1, keepdim=True)
    frames = torch.cat([frames[..., :1] * 0.03, frames[..., 1:] - 0.97 * frames[..., :-1]], dim=-1)
    window = torch.hann_window(WINDOW, periodic=False, device=wave.device).pow(0.85)
    return torch.fft.rfft(frames * window, n=N_FFT).abs().pow(2)


class LogMelFeatures:
    """``n_mels`` log mel energies per 20 ms frame, floored ``floor_db`` below the loudest band of
    a full-scale 1 kHz tone. The floor makes silence and low background noise one constant
    vector, so that a k-means gives silence one unit instead of spreading its noise over many."""

    min_samples = WINDOW

    def __init__(self, n_mels: int = 80, floor_db: float = FLOOR_DB):
        self.dim = n_mels
        self.filters = mel_filterbank(n_mels)
        tone = torch.sin(2 * math.pi * 1000.0 * torch.arange(SAMPLE_RATE) / SAMPLE_RATE)
        full_scale = (power_spectrum(tone[None]) @ self.filters).max()
        self.floor = float(full_scale) * 10 ** (-floor_db / 10)

    def __call__(self, wave: Tensor) -> Tensor:
        mel = power_spectrum(wave) @ self.filters.to(wave.device)
        return mel.clamp(min=self.floor).log()


def deltas(x: Tensor, width: int = 2) -> Tensor:
    """Regression deltas over time of [B, T, D] (5-frame window, replicated edges)."""
    padded = F.pad(x.transpose(1, 2), (width, width), mode="replicate").transpose(1, 2)
    T = x.shape[1]
    num = sum(
        n * (padded[:, width + n : width + n + T] - padded[:, width - n : width - n + T]) for n in range(1, width + 1)
    )
    return num / (2 * sum(n * n for n in range(1, width + 1)))


class MfccFeatures:
    """13 MFCCs (23 mel bands, orthonormal DCT-II, lifter 22) with deltas and delta-deltas:
    39 dims per 20 ms frame, like HuBERT's iteration-1 features but on the 50 Hz grid."""

    min_samples = WINDOW

    def __init__(self, n_mfcc: int = 13, n_mels: int = 23, lifter: float = 22.0, floor_db: float = FLOOR_DB):
        self.dim = 3 * n_mfcc
        self.logmel = LogMelFeatures(n_mels, floor_db)
        k = torch.arange(n_mels, dtype=torch.float64)
        dct = torch.cos(math.pi / n_mels * (k[:, None] + 0.5) * torch.arange(n_mfcc, dtype=torch.float64)) * math.sqrt(
            2 / n_mels
        )
        dct[:, 0] /= math.sqrt(2)
        lift = 1 + lifter / 2 * torch.sin(math.pi * torch.arange(n_mfcc, dtype=torch.float64) / lifter)
        self.dct = (dct * lift).float()

    def __call__(self, wave: Tensor) -> Tensor:
        mfcc = self.logmel(wave) @ self.dct.to(wave.device)
        delta = deltas(mfcc)
        return torch.cat([mfcc, delta, deltas(delta)], dim=-1)


def build_feature_reader(
    feature_type: str = "hubert",
    hubert_path: str | os.PathLike | None = None,
    layer: int = DEFAULT_LAYER,
    device: str | torch.device = "cpu",
    autocast_dtype: torch.dtype | None = None,
    streaming: tuple[int, int] | None = None,
    floor_db: float = FLOOR_DB,
) -> FeatureReader:
    """The reader for ``feature_type`` ("hubert" needs ``hubert_path``; ``autocast_dtype`` and
    ``streaming`` apply to it only, ``floor_db`` to log-mel and MFCC)."""
    if feature_type == "hubert":
        from dgslm.encoder.hubert_checkpoint import load_hubert

        if hubert_path is None:
            raise DgslmError("feature type 'hubert' needs a HuBERT checkpoint (--hubert PATH)")
        model = load_hubert(hubert_path, device)
        try:
            return HubertFeatures(model, layer, autocast_dtype=autocast_dtype, streaming=streaming)
        except ValueError as err:  # a layer the model does not have
            raise DgslmError(str(err), hubert_path) from None
    if feature_type == "logmel":
        return LogMelFeatures(floor_db=floor_db)
    if feature_type == "mfcc":
        return MfccFeatures(floor_db=floor_db)
    raise DgslmError(f"unknown feature type {feature_type!r}; choose from {', '.join(FEATURE_TYPES)}")
