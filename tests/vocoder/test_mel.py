"""The HiFi-GAN loss mel spectrogram: Slaney mel bands, frame count, log floor."""

from __future__ import annotations

import math

import torch

from dgslm.vocoder.mel import _hz_to_mel, _mel_to_hz, mel_filterbank, mel_spectrogram


def test_slaney_scale_round_trips_and_is_linear_below_1khz():
    hz = torch.tensor([0.0, 200.0, 999.0, 1000.0, 4000.0, 8000.0], dtype=torch.float64)
    torch.testing.assert_close(_mel_to_hz(_hz_to_mel(hz)), hz)
    assert float(_hz_to_mel(torch.tensor(1000.0))) == 15.0
    assert math.isclose(float(_hz_to_mel(torch.tensor(200.0))), 3.0)


def test_sine_peaks_in_its_band():
    fb = mel_filterbank(16000, 1024, 80, 0.0, 8000.0)
    assert fb.shape == (80, 513) and torch.all(fb >= 0)
    t = torch.arange(16000) / 16000
    mel = mel_spectrogram(torch.sin(2 * math.pi * 1000 * t)[None])
    assert mel.shape == (1, 80, 16000 // 256)
    centers = _mel_to_hz(torch.linspace(0, float(_hz_to_mel(torch.tensor(8000.0))), 82)[1:-1])
    assert int(mel[0].mean(1).argmax()) == int((centers - 1000).abs().argmin())
    silence = mel_spectrogram(torch.zeros(1, 4096))
    torch.testing.assert_close(silence, torch.full_like(silence, math.log(1e-5)))  # the log floor
