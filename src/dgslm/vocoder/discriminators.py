"""HiFi-GAN discriminators: multi-period (2-D convs over period-folded audio) and multi-scale
(1-D grouped convs over the raw and average-pooled audio). Each returns, for real and generated
audio, the per-discriminator scores and their feature maps."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from dgslm.vocoder.generator import LRELU_SLOPE

Scores = list[torch.Tensor]
FeatureMaps = list[list[torch.Tensor]]


def _width(channels: int, scale: float) -> int:
    return max(1, int(round(channels * scale)))


def _run_stack(convs: nn.ModuleList, conv_post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """LeakyReLU(0.1) after each conv but the output one; returns (flat scores, feature maps)."""
    fmaps = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmaps.append(x)
    x = conv_post(x)
    fmaps.append(x)
    return x.flatten(1), fmaps


class PeriodDiscriminator(nn.Module):
    """Audio folded to [B, 1, N / p, p], five (5, 1) convs and a (3, 1) output conv."""

    def __init__(self, period: int, scale: float = 1.0):
        super().__init__()
        self.period = period
        chans = [1] + [_width(c, scale) for c in (32, 128, 512, 1024, 1024)]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(chans[i], chans[i + 1], (5, 1), (3 if i < 4 else 1, 1), padding=(2, 0)))
            for i in range(5)
        )
        self.conv_post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, n = x.shape
        if n % self.period:
            x = F.pad(x, (0, self.period - n % self.period), mode="reflect")
        return _run_stack(self.convs, self.conv_post, x.view(b, c, -1, self.period))


class ScaleDiscriminator(nn.Module):
    """Seven 1-D convs (grouped, strided) and a k3 output conv on one time scale."""

    LAYERS = [  # (out channels, kernel, stride, groups)
        (128, 15, 1, 1), (128, 41, 2, 4), (256, 41, 2, 16), (512, 41, 4, 16),
        (1024, 41, 4, 16), (1024, 41, 1, 16), (1024, 5, 1, 1),
    ]  # fmt: skip

    def __init__(self, use_spectral_norm: bool = False, scale: float = 1.0):
        super().__init__()
        norm = spectral_norm if use_spectral_norm else weight_norm
        convs, c_in = [], 1
        for c, k, s, g in self.LAYERS:
            c_out = _width(c, scale)
            convs.append(norm(nn.Conv1d(c_in, c_out, k, s, groups=math.gcd(g, c_in, c_out), padding=(k - 1) // 2)))
            c_in = c_out
        self.convs = nn.ModuleList(convs)
        self.conv_post = norm(nn.Conv1d(c_in, 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return _run_stack(self.convs, self.conv_post, x)


class _Ensemble(nn.Module):
    discriminators: nn.ModuleList

    def inputs(self, y: torch.Tensor) -> list[torch.Tensor]:
        return [y] * len(self.discriminators)

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor) -> tuple[Scores, Scores, FeatureMaps, FeatureMaps]:
        """Real ``y`` and generated ``y_hat`` [B, 1, N] -> (real scores, fake scores, real fmaps, fake fmaps)."""
        out: tuple[Scores, Scores, FeatureMaps, FeatureMaps] = ([], [], [], [])
        for d, yr, yg in zip(self.discriminators, self.inputs(y), self.inputs(y_hat)):
            score_r, fmap_r = d(yr)
            score_g, fmap_g = d(yg)
            out[0].append(score_r), out[1].append(score_g), out[2].append(fmap_r), out[3].append(fmap_g)
        return out


class MultiPeriodDiscriminator(_Ensemble):
    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), scale: float = 1.0):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, scale) for p in periods)


class MultiScaleDiscriminator(_Ensemble):
    """Raw audio (spectral norm), then x2 and x4 average-pooled audio (weight norm)."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.discriminators = nn.ModuleList(ScaleDiscriminator(i == 0, scale) for i in range(3))
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def inputs(self, y: torch.Tensor) -> list[torch.Tensor]:
        scales = [y]
        for _ in range(len(self.discriminators) - 1):
            scales.append(self.pool(scales[-1]))
        return scales
