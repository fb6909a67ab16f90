"""HuBERT (wav2vec 2.0-style) speech encoder, inference only, numerically equal to fairseq's.

Waveform [B, N] at 16 kHz -> conv feature extractor (50 Hz) -> LayerNorm -> projection ->
convolutional positional embedding -> transformer layers. ``forward(wave, layer=L)`` returns
fairseq's ``extract_features(..., output_layer=L)``: the output of layer L (1-based); layers
after L are never computed. Parameter names are fairseq's, except the positional conv, whose
weight norm is folded into a plain ``encoder.pos_conv.weight`` at load time.

Inference on a CPU goes through :mod:`dgslm.onednn` (convolutions on channels-last data with
their GELU fused, one matrix product for q/k/v, GELU and residual sums fused into the linear
layers); with autograd on, or on a GPU, the same code runs the plain torch ops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgslm.onednn import conv1d, linear

MAX_CHUNK = 1_600_000  # samples per independent pass, as the original reader (100 s)
DEFAULT_CONV_LAYERS = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2


@dataclass
class HubertConfig:
    conv_layers: tuple[tuple[int, int, int], ...] = DEFAULT_CONV_LAYERS  # (channels, kernel, stride)
    conv_bias: bool = False
    extractor_mode: str = "default"  # "default": GroupNorm in block 0; "layer_norm": LN in every block
    embed_dim: int = 768
    ffn_dim: int = 3072
    layers: int = 12
    heads: int = 12
    layer_norm_first: bool = False  # False: post-norm (base); True: pre-norm (large)
    conv_pos: int = 128
    conv_pos_groups: int = 16
    normalize: bool = False  # standardise the whole waveform first (large models)
    sample_rate: int = 16_000


class Fp32GroupNorm(nn.GroupNorm):
    def forward(self, x: Tensor) -> Tensor:
        """[B, C, T] in any layout (4-D inside, so that channels-last data stays channels-last)."""
        x4 = x.unsqueeze(2).float()
        return F.group_norm(x4, self.num_groups, self.weight.float(), self.bias.float(), self.eps).squeeze(2).type_as(x)


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of [B, C, T], in fp32 (key ``<i>.2.1`` in fairseq)."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_module("1", nn.LayerNorm(channels))  # fairseq nests it as Sequential(T, LN, T)

    def forward(self, x: Tensor) -> Tensor:
        ln = getattr(self, "1")
        y = F.layer_norm(x.transpose(1, 2).float(), ln.normalized_shape, ln.weight.float(), ln.bias.float(), ln.eps)
        return y.transpose(1, 2).type_as(x)


def conv_block(cfg: HubertConfig, index: int, in_channels: int) -> nn.Sequential:
    """Conv1d -> (norm) -> GELU, indexed like fairseq's (slot 1 was dropout)."""
    channels, kernel, stride = cfg.conv_layers[index]
    conv = nn.Conv1d(in_channels, channels, kernel, stride=stride, bias=cfg.conv_bias)
    if cfg.extractor_mode == "layer_norm":
        return nn.Sequential(conv, nn.Identity(), ChannelLayerNorm(channels), nn.GELU())
    if index == 0:
        return nn.Sequential(conv, nn.Identity(), Fp32GroupNorm(channels, channels, affine=True), nn.GELU())
    return nn.Sequential(conv, nn.Identity(), nn.Identity(), nn.GELU())  # no norm


class FeatureExtractor(nn.Module):
    def __init__(self, cfg: HubertConfig):
        super().__init__()
        if cfg.extractor_mode not in ("default", "layer_norm"):
            raise ValueError(f"unknown extractor_mode {cfg.extractor_mode!r}")
        in_channels = [1] + [c for c, _, _ in cfg.conv_layers[:-1]]
        self.conv_layers = nn.ModuleList(conv_block(cfg, i, c) for i, c in enumerate(in_channels))

    def forward(self, wave: Tensor) -> Tensor:
        """[B, N] -> [B, C, T] (channels-last strided on the fused CPU path)."""
        x = wave.unsqueeze(1)
        for conv, _, norm, _ in self.conv_layers:
            if isinstance(norm, nn.Identity):
                x = conv1d(x, conv, "gelu")  # the block's GELU, fused
            else:
                x = F.gelu(norm(conv1d(x, conv)))
        return x


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        """Attention of [B, T, D] over itself, plus ``residual`` if given."""
        B, T, D = x.shape
        qkv = linear(x, (self.q_proj, self.k_proj, self.v_proj)).view(B, T, 3, self.heads, D // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        y = F.scaled_dot_product_attention(q, k, v)
        return linear(y.transpose(1, 2).reshape(B, T, D), self.out_proj, residual=residual)


class EncoderLayer(nn.Module):
    def __init__(self, cfg: HubertConfig):
        super().__init__()
        self.pre_norm = cfg.layer_norm_first
        self.self_attn = SelfAttention(cfg.embed_dim, cfg.heads)
        self.self_attn_layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.fc1 = nn.Linear(cfg.embed_dim, cfg.ffn_dim)
        self.fc2 = nn.Linear(cfg.ffn_dim, cfg.embed_dim)
        self.final_layer_norm = nn.LayerNorm(cfg.embed_dim)

    def ffn(self, x: Tensor, residual: Tensor) -> Tensor:
        """``residual + fc2(gelu(fc1(x)))``, GELU in float32 at least."""
        return linear(linear(x, self.fc1, "gelu"), self.fc2, residual=residual)

    def forward(self, x: Tensor) -> Tensor:
        if self.pre_norm:
            x = self.self_attn(self.self_attn_layer_norm(x), residual=x)
            return self.ffn(self.final_layer_norm(x), residual=x)
        x = self.self_attn_layer_norm(self.self_attn(x, residual=x))
        return self.final_layer_norm(self.ffn(x, residual=x))


class Encoder(nn.Module):
    def __init__(self, cfg: HubertConfig):
        super().__init__()
        self.cfg = cfg
        k = cfg.conv_pos
        self.pos_conv = nn.Conv1d(cfg.embed_dim, cfg.embed_dim, k, padding=k // 2, groups=cfg.conv_pos_groups)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.layers))

    def positions(self, x: Tensor) -> Tensor:
        """GELU(positional conv) of [B, T, D], as [B, D, T'], always in fp32: on an Intel Xeon with
        AMX, PyTorch 2.13's bf16 grouped conv1d with an even kernel and 8-12 channels per group
        returns garbage (relative error > 100%, plain and oneDNN paths alike; e.g. 48 channels,
        4 groups, kernel 16); this conv is ~3% of HuBERT Base's work."""
        with torch.autocast(x.device.type, enabled=False):
            return conv1d(x.float().transpose(1, 2), self.pos_conv, "gelu").type_as(x)

    def forward(self, x: Tensor, layer: int | None = None) -> Tensor:
        """[B, T, D] projected features -> output of ``layer`` (1-based; None = all + final LN if pre-norm)."""
        pos = self.positions(x)
        if self.cfg.conv_pos % 2 == 0:
            pos = pos[..., :-1]  # "SamePad": an even kernel gives one extra frame
        x = x + pos.transpose(1, 2)
        if not self.cfg.layer_norm_first:
            x = self.layer_norm(x)
        for block in self.layers[: layer or len(self.layers)]:
            x = block(x)
        if self.cfg.layer_norm_first and layer is None:
            x = self.layer_norm(x)
        return x


class Hubert(nn.Module):
    """HuBERT encoder. ``forward(wave [B, N], layer)`` -> features [B, T, D] with
    T = (N - 400) // 320 + 1 for the default conv layout."""

    def __init__(self, cfg: HubertConfig):
        super().__init__()
        self.cfg = cfg
        conv_dim = cfg.conv_layers[-1][0]
        self.feature_extractor = FeatureExtractor(cfg)
        self.layer_norm = nn.LayerNorm(conv_dim)
        self.post_extract_proj = nn.Linear(conv_dim, cfg.embed_dim) if conv_dim != cfg.embed_dim else nn.Identity()
        self.encoder = Encoder(cfg)

    @property
    def receptive_field(self) -> int:
        field = 1
        for _, kernel, stride in reversed(self.cfg.conv_layers):
            field = (field - 1) * stride + kernel
        return field

    @property
    def hop(self) -> int:
        return math.prod(s for _, _, s in self.cfg.conv_layers)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced by one pass over ``num_samples`` samples (0 if too short)."""
        n = num_samples
        for _, kernel, stride in self.cfg.conv_layers:
            n = (n - kernel) // stride + 1 if n >= kernel else 0
        return n

    def check_layer(self, layer: int | None) -> None:
        if layer is not None and not 1 <= layer <= self.cfg.layers:
            raise ValueError(f"layer must be in 1..{self.cfg.layers}, got {layer}")

    def project(self, conv_features: Tensor) -> Tensor:
        """Conv features [B, C, T] -> encoder input [B, T, D]."""
        return self.post_extract_proj(self.layer_norm(conv_features.transpose(1, 2)))

    def forward(self, wave: Tensor, layer: int | None = None) -> Tensor:
        """One independent pass (no chunking, no normalisation): [B, N] -> [B, T, D]."""
        self.check_layer(layer)
        return self.encoder(self.project(self.feature_extractor(wave)), layer)

    def normalize_wave(self, wave: Tensor) -> Tensor:
        """The task-level whole-utterance standardisation (only when ``cfg.normalize``)."""
        if not self.cfg.normalize:
            return wave
        return F.layer_norm(wave.float(), wave.shape[-1:]).type_as(wave)

    def chunks(self, wave: Tensor, max_chunk: int = MAX_CHUNK) -> list[Tensor]:
        """Split [B, N] into the original's independent chunks of ``max_chunk`` samples.

        A tail shorter than the receptive field (400 samples) gives no frame and is dropped
        (the original crashes on it); a whole input that short is an error."""
        if wave.shape[-1] < self.receptive_field:
            raise ValueError(f"audio too short: {wave.shape[-1]} samples < {self.receptive_field} (one frame)")
        pieces = list(torch.split(wave, max_chunk, dim=-1))
        return [p for p in pieces if p.shape[-1] >= self.receptive_field]

    @torch.inference_mode()
    def extract_features(self, wave: Tensor, layer: int | None = None, max_chunk: int = MAX_CHUNK) -> Tensor:
        """The original reader: normalise (if the task says so), run each chunk independently,
        concatenate frames. ``wave`` is [N] or [B, N] (equal-length sequences); returns [(B,) T, D]."""
        squeeze = wave.dim() == 1
        wave = self.normalize_wave(wave.reshape(-1, wave.shape[-1]))
        feats = torch.cat([self(chunk, layer) for chunk in self.chunks(wave, max_chunk)], dim=1)
        return feats[0] if squeeze else feats

    @torch.inference_mode()
    def extract_streaming(
        self, wave: Tensor, layer: int | None = None, chunk_frames: int = 250, context_frames: int = 50
    ) -> Tensor:
        """Streaming variant: windows of ``chunk_frames`` new frames, each computed with
        ``context_frames`` frames of left context (discarded), on the frame grid of one
        whole-file pass (T = (N - 400) // 320 + 1, no drift). Memory and latency are bounded,
        but features differ slightly from :meth:`extract_features` (per-window GroupNorm
        statistics, limited attention span). With ``cfg.normalize`` the whole-file
        standardisation still comes first. ``wave`` is [N] or [B, N]."""
        squeeze = wave.dim() == 1
        wave = self.normalize_wave(wave.reshape(-1, wave.shape[-1]))
        total = self.num_frames(wave.shape[-1])
        if total == 0:
            raise ValueError(f"audio too short: {wave.shape[-1]} samples < {self.receptive_field} (one frame)")
        pieces = []
        for first in range(0, total, chunk_frames):
            start = max(0, first - context_frames)
            last = min(total, first + chunk_frames)
            end = wave.shape[-1] if last == total else (last - 1) * self.hop + self.receptive_field
            window = wave[:, start * self.hop : end]  # the last window keeps the tail, as one pass does
            pieces.append(self(window, layer)[:, first - start :])
        feats = torch.cat(pieces, dim=1)
        return feats[0] if squeeze else feats
