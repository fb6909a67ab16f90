"""The unit HiFi-GAN generator (fairseq ``CodeGenerator``): unit and speaker embeddings, an
optional duration predictor, transposed-conv upsampling with multi-receptive-field blocks.

Inference on a CPU runs the convolutions through :mod:`dgslm.onednn` on channels-last data,
with the leaky ReLU after a block's first conv and the residual sum of its second fused in;
training (autograd on) and GPUs run the same code with the plain torch ops. Small inference
calls (the live vocoder's 20 ms windows, narrow generators) run each stage's residual blocks as
one grouped stack (:func:`stack_blocks`): a third of the calls, for which per-call costs, not
multiply-adds, set the time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from dgslm.onednn import cached, channels_last, conv1d
from dgslm.vocoder.config import DurationPredictorConfig, VocoderConfig

LRELU_SLOPE = 0.1  # every LeakyReLU but the one before conv_post, which keeps torch's 0.01
CHUNK_FRAMES = 1000  # conditioning frames decoded at once (20 s of speech; bounds the activations' memory)
# channels^2 x samples of a stage at or under which its blocks run stacked: measured on an Intel
# Xeon (1 thread), stacking is 1.3-3x faster below it and up to 2x slower well above it
MAX_STACKED_WORK = 2**18


class ResBlock(nn.Module):
    """HiFi-GAN type-1 residual block: three (dilated conv, conv) pairs with skip connections."""

    def __init__(self, channels: int, kernel_size: int, dilations: list[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=(kernel_size * d - d) // 2)
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2) for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2):
            t = conv1d(F.leaky_relu(x, LRELU_SLOPE), conv1, "leaky_relu", LRELU_SLOPE)
            x = conv1d(t, conv2, residual=x)
        return x


def stack_blocks(blocks: Sequence[ResBlock]) -> list[tuple[nn.Conv1d, nn.Conv1d]] | None:
    """The (dilated conv, conv) pairs of residual blocks that share their dilations as grouped
    convs over the blocks' stacked channels (``groups = len(blocks)``), kernels zero-padded
    on both sides to the widest: the same products plus zeros. None if the dilations differ."""
    dilations = [[conv.dilation[0] for conv in block.convs1] for block in blocks]
    if any(d != dilations[0] for d in dilations):
        return None
    width = max(block.convs1[0].kernel_size[0] for block in blocks)

    def grouped(convs: list[nn.Conv1d]) -> nn.Conv1d:
        weight = torch.cat([F.pad(c.weight, ((width - c.kernel_size[0]) // 2,) * 2) for c in convs])
        dilation = convs[0].dilation[0]
        conv = nn.Conv1d(weight.shape[0], weight.shape[0], width, dilation=dilation,
                         padding=dilation * (width - 1) // 2, groups=len(convs), device=weight.device,
                         dtype=weight.dtype)  # fmt: skip
        conv.weight = nn.Parameter(weight, requires_grad=False)
        conv.bias = nn.Parameter(torch.cat([c.bias for c in convs]), requires_grad=False)
        return conv

    pairs = zip(*(zip(block.convs1, block.convs2) for block in blocks))
    return [(grouped([c1 for c1, _ in pair]), grouped([c2 for _, c2 in pair])) for pair in pairs]


def multi_receptive_field(blocks: Sequence[ResBlock], x: torch.Tensor) -> torch.Tensor:
    """The mean of ``blocks`` on ``x`` [B, C, L]: stacked (:func:`stack_blocks`) at inference
    when ``C^2 L <= MAX_STACKED_WORK``, else block by block."""
    channels = x.shape[1]
    pairs = None
    if not torch.is_grad_enabled() and len(blocks) > 1 and channels**2 * x.shape[2] <= MAX_STACKED_WORK:
        params = [p for block in blocks for p in block.parameters()]
        pairs = cached(blocks[0], ("stacked",), params, lambda: stack_blocks(blocks))
    if pairs is None:
        return sum(block(x) for block in blocks) / len(blocks)
    s = x.repeat(1, len(blocks), 1)
    for conv1, conv2 in pairs:
        t = conv1d(F.leaky_relu(s, LRELU_SLOPE), conv1, "leaky_relu", LRELU_SLOPE)
        s = conv1d(t, conv2, residual=s)
    return s.unflatten(1, (len(blocks), channels)).sum(1) / len(blocks)


class DurationPredictor(nn.Module):
    """fairseq ``VariancePredictor``: [B, T, E] unit embeddings -> [B, T] log(duration + 1).

    The original pads the second conv by 1 whatever the kernel (it only works for kernel 3);
    here both convs keep the length, which is the same for kernel 3.
    """

    def __init__(self, cfg: DurationPredictorConfig):
        super().__init__()
        k, hidden = cfg.var_pred_kernel_size, cfg.var_pred_hidden_dim
        self.conv1 = nn.Sequential(nn.Conv1d(cfg.encoder_embed_dim, hidden, k, padding=(k - 1) // 2), nn.ReLU())
        self.ln1 = nn.LayerNorm(hidden)
        self.conv2 = nn.Sequential(nn.Conv1d(hidden, hidden, k, padding=(k - 1) // 2), nn.ReLU())
        self.ln2 = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(cfg.var_pred_dropout)
        self.proj = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.ln1(self.conv1(x.transpose(1, 2)).transpose(1, 2)))
        x = self.dropout(self.ln2(self.conv2(x.transpose(1, 2)).transpose(1, 2)))
        return self.proj(x).squeeze(2)


def durations_from_log(log_dur: torch.Tensor) -> torch.Tensor:
    """Integer durations ``max(1, round(exp(x) - 1))`` from predicted log(duration + 1)."""
    return torch.clamp(torch.round(torch.exp(log_dur) - 1).long(), min=1)


class UnitGenerator(nn.Module):
    """Units (and a speaker) to a 16 kHz waveform, ``hop_size`` samples per unit.

    Built with plain convs (inference); ``apply_weight_norm`` adds the weight-norm
    parametrisation used in training and in the checkpoint files.
    """

    def __init__(self, cfg: VocoderConfig):
        super().__init__()
        self.cfg = cfg
        self.dict = nn.Embedding(cfg.num_embeddings, cfg.embedding_dim)
        self.spkr: nn.Module | None = None
        if cfg.embedder_params:
            self.spkr = nn.Linear(cfg.embedder_dim, cfg.embedding_dim)
        elif cfg.multispkr:
            self.spkr = nn.Embedding(cfg.num_speakers, cfg.embedding_dim)
        self.dur_predictor = DurationPredictor(cfg.dur_predictor_params) if cfg.dur_predictor_params else None

        c0 = cfg.upsample_initial_channel
        self.conv_pre = nn.Conv1d(cfg.model_in_dim, c0, 7, padding=3)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(c0 // 2**i, c0 // 2 ** (i + 1), k, stride=u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes))
        )
        self.resblocks = nn.ModuleList(
            ResBlock(c0 // 2 ** (i + 1), k, d)
            for i in range(len(self.ups))
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes)
        )
        self.conv_post = nn.Conv1d(c0 // 2 ** len(self.ups), 1, 7, padding=3)

    def weight_norm_convs(self) -> list[nn.Module]:
        """The convs that carry weight norm in the original (all but the embeddings and predictor)."""
        convs = [self.conv_pre, *self.ups, self.conv_post]
        for block in self.resblocks:
            convs += [*block.convs1, *block.convs2]
        return convs

    def apply_weight_norm(self) -> UnitGenerator:
        for conv in self.weight_norm_convs():
            weight_norm(conv)
        return self

    def remove_weight_norm(self) -> UnitGenerator:
        for conv in self.weight_norm_convs():
            if parametrize.is_parametrized(conv, "weight"):
                parametrize.remove_parametrizations(conv, "weight")
        return self

    def conditioning(
        self, code: torch.Tensor, speaker: torch.Tensor | None = None, dur_prediction: bool = False
    ) -> torch.Tensor:
        """``code`` [B, U] -> conditioning frames [B, model_in_dim, U'] (U' = U unless durations
        are predicted, which needs B = 1). ``speaker``: [B] ids, or [B, embedder_dim] vectors."""
        x = self.dict(code).transpose(1, 2)
        if dur_prediction and self.dur_predictor is not None:
            if code.shape[0] != 1:
                raise ValueError("duration prediction works on one sequence at a time")
            durations = durations_from_log(self.dur_predictor(x.transpose(1, 2)))
            x = torch.repeat_interleave(x, durations.view(-1), dim=2)
        if self.spkr is not None:
            if speaker is None:
                raise ValueError("this vocoder is multi-speaker: give a speaker")
            s = self.spkr(speaker)  # [B, E]
            x = torch.cat([x, s.unsqueeze(2).expand(-1, -1, x.shape[2])], dim=1)
        return x

    def decode(self, x: torch.Tensor, crops: Sequence[tuple[slice, slice]] | None = None) -> torch.Tensor:
        """Conditioning frames [B, model_in_dim, T] -> waveform [B, 1, T * hop_size] in (-1, 1).

        ``crops``: per upsampling stage, the part of its upsampled and of its output samples to
        keep (to compute only what some output samples depend on; see
        :func:`dgslm.vocoder.streaming.frame_crops`)."""
        x = conv1d(channels_last(x), self.conv_pre)
        n_kernels = len(self.cfg.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = conv1d(F.leaky_relu(x, LRELU_SLOPE), up)
            x = x if crops is None else x[:, :, crops[i][0]]
            x = multi_receptive_field(self.resblocks[i * n_kernels : (i + 1) * n_kernels], x)
            x = x if crops is None else x[:, :, crops[i][1]]
        return torch.tanh(conv1d(F.leaky_relu(x), self.conv_post)).contiguous()

    def receptive_radius(self) -> int | None:
        """Conditioning frames on either side that one output sample depends on (rounded up),
        or None when an upsampling stage does not give exactly ``rate`` samples per frame."""
        cfg = self.cfg
        if any((k - u) % 2 for u, k in zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
            return None
        block = max(sum((k - 1) * (d + 1) // 2 for d in ds) for k, ds in zip(cfg.resblock_kernel_sizes,
                                                                             cfg.resblock_dilation_sizes))  # fmt: skip
        radius, rate = 3.0, 1  # conv_pre: kernel 7
        for u, k in zip(cfg.upsample_rates, cfg.upsample_kernel_sizes):
            radius += math.ceil(k / u) / rate  # a transposed conv reads ceil(k / u) input frames
            rate *= u
            radius += block / rate
        return math.ceil(radius + 3 / rate) + 1  # conv_post: kernel 7; one frame of margin

    def decode_chunked(self, x: torch.Tensor, chunk: int = CHUNK_FRAMES) -> torch.Tensor:
        """:meth:`decode` of [B, D, T] frames ``chunk`` frames at a time, each window with the
        receptive field's frames of context on both sides: the same samples (up to float
        rounding), with memory bounded by ``chunk`` instead of T."""
        radius, hop = self.receptive_radius(), self.cfg.hop_size
        length = x.shape[2]
        if radius is None or length <= chunk + 2 * radius:
            return self.decode(x)
        out = None
        for start in range(0, length, chunk):
            lo, hi = max(0, start - radius), min(length, start + chunk + radius)
            wave = self.decode(x[:, :, lo:hi])
            if out is None:
                out = wave.new_empty(x.shape[0], 1, length * hop)
            end = min(chunk, length - start)
            out[:, :, start * hop : (start + end) * hop] = wave[:, :, (start - lo) * hop : (start - lo + end) * hop]
        return out

    def forward(
        self, code: torch.Tensor, speaker: torch.Tensor | None = None, dur_prediction: bool = False
    ) -> torch.Tensor:
        """``code`` [B, U] unit ids -> waveform [B, N] (long inputs in chunks, see :meth:`decode_chunked`)."""
        return self.decode_chunked(self.conditioning(code, speaker, dur_prediction)).squeeze(1)
