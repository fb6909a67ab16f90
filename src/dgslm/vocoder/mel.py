"""The HiFi-GAN training mel spectrogram (log of an 80-band Slaney mel of the STFT magnitude)."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    linear = hz / (200.0 / 3)
    log = 15.0 + torch.log(torch.clamp(hz, min=1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return torch.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    linear = mel * (200.0 / 3)
    log = 1000.0 * torch.exp((math.log(6.4) / 27.0) * (mel - 15.0))
    return torch.where(mel >= 15.0, log, linear)


@functools.lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> torch.Tensor:
    """[n_mels, n_fft // 2 + 1] triangular filters with Slaney area normalisation (librosa's
    ``filters.mel`` defaults), in float64 for accuracy then cast to float32."""
    fft_freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mel_pts = torch.linspace(
        *_hz_to_mel(torch.tensor([fmin, fmax], dtype=torch.float64)).tolist(), n_mels + 2, dtype=torch.float64
    )
    hz_pts = _mel_to_hz(mel_pts)
    widths = hz_pts.diff()
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0)
    weights *= (2.0 / (hz_pts[2:] - hz_pts[:-2]))[:, None]
    return weights.float()


def mel_spectrogram(
    wave: torch.Tensor,
    sample_rate: int = 16_000,
    n_fft: int = 1024,
    hop_size: int = 256,
    win_size: int = 1024,
    n_mels: int = 80,
    fmin: float = 0.0,
    fmax: float | None = 8000.0,
) -> torch.Tensor:
    """[B, N] waveform -> [B, n_mels, frames] log mel (reflect-padded by (n_fft - hop) / 2, no
    centring, magnitude sqrt(re² + im² + 1e-9), natural log of max(x, 1e-5))."""
    pad = (n_fft - hop_size) // 2
    x = F.pad(wave.float().unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(win_size, device=wave.device)
    spec = torch.stft(x, n_fft, hop_size, win_size, window, center=False, return_complex=True)
    magnitude = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
    fb = mel_filterbank(sample_rate, n_fft, n_mels, float(fmin), float(fmax or sample_rate / 2)).to(wave.device)
    return torch.log(torch.clamp(fb @ magnitude, min=1e-5))
