"""SpeechDLM, the dual-tower dialogue language model of dGSLM, in one file.

C channels (sorted names) run through one shared pre-norm transformer decoder. They are
stacked into the batch dimension, so every weight is read once per step for all channels.
The last ``cross_layers`` layers add a cross-channel attention: the query is the channel's
own LayerNorm'd state, keys/values are the other channels' *raw* post-self-attention states
(causal, same step included). Heads: token logits (tied to the embedding or not), a
duration regression, and optionally one head per channel offset (cross prediction).

Parameter names equal the original's state-dict names without the ``decoder.`` prefix.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.checkpoint import checkpoint

from dgslm.lm.attention import dropout_attention
from dgslm.lm.config import SpeechDLMConfig
from dgslm.lm.linear import Linear
from dgslm.onednn import cached

_DECODING_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


@dataclass
class SpeechDLMOutput:
    """``logits[b, c, k]`` is channel c's head k, which predicts channel (c + k) % C."""

    logits: Tensor  # (B, C, K, T, V)
    durations: Tensor | None  # (B, C, K, T) raw duration-head output, None without the head
    features: Tensor  # (B, C, T, output_dim): after the final LayerNorm and project_out_dim
    hidden_states: list[Tensor] | None = None  # L + 1 tensors (B, C, T, embed_dim)


class KVCache:
    """Keys and values of every layer, preallocated for ``max_length`` positions.

    Rows are ``batch * C + channel``. Self-attention buffers are (layers, 2, B*C, H, max_length,
    head_dim); cross-attention buffers hold, per query channel, the other C - 1 channels'
    keys interleaved position-major: (cross_layers, 2, B*C, H, max_length * (C - 1), head_dim).
    ``length`` is the number of positions already fed; :meth:`advance` and :meth:`truncate`
    change it.
    """

    def __init__(self, cfg: SpeechDLMConfig, batch_size: int, max_length: int, device=None, dtype=None):
        channels, heads = cfg.num_channels, cfg.attention_heads
        head_dim = cfg.embed_dim // heads
        rows = batch_size * channels
        self.num_channels = channels
        self.batch_size = batch_size
        self.max_length = max_length
        self.length = 0
        kw = dict(device=device, dtype=dtype)
        self.self_kv = torch.zeros(cfg.layers, 2, rows, heads, max_length, head_dim, **kw)
        self.cross_kv = torch.zeros(cfg.num_cross_layers, 2, rows, heads, max_length * (channels - 1), head_dim, **kw)
        self._split_layers()

    def advance(self, positions: int) -> None:
        """Count ``positions`` more positions as fed (the model has written their keys and values;
        it checks the room before it writes)."""
        self.length += positions

    def truncate(self, length: int = 0) -> None:
        """Forget every position from ``length`` on (0: empty the cache); the next one fed is ``length``."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot truncate a cache of {self.length} positions to {length}")
        self.length = length

    def _split_layers(self) -> None:
        """Per-layer (keys, values) views, made once so that a step does no indexing."""
        self.self_layers = [(kv[0], kv[1]) for kv in self.self_kv]
        self.cross_layers = [(kv[0], kv[1]) for kv in self.cross_kv]

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows ``index`` (in that order), e.g. the surviving beams."""
        channels = self.num_channels
        index = index.to(self.self_kv.device)
        rows = (index[:, None] * channels + torch.arange(channels, device=index.device)).reshape(-1)
        if index.numel() == self.batch_size:
            n = self.length
            self.self_kv[..., :n, :] = self.self_kv[..., :n, :].index_select(2, rows)
            n = self.length * (channels - 1)
            self.cross_kv[..., :n, :] = self.cross_kv[..., :n, :].index_select(2, rows)
        else:
            self.self_kv = self.self_kv.index_select(2, rows)
            self.cross_kv = self.cross_kv.index_select(2, rows)
            self.batch_size = index.numel()
            self._split_layers()


def sinusoidal_positions(num: int, dim: int, pad: int) -> Tensor:
    """fairseq's table: [sin | cos] halves, frequencies exp(-k ln(1e4) / (dim/2 - 1)), row pad = 0."""
    half = dim // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000) / (half - 1)))
    angles = torch.arange(num, dtype=torch.float).unsqueeze(1) * freq.unsqueeze(0)
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        table = torch.cat([table, torch.zeros(num, 1)], dim=1)
    table[pad] = 0
    return table


@dataclass
class _Masks:
    """Attention masks of one forward call (bool, True = may attend) or ``causal`` flags."""

    self_mask: Tensor | None = None
    cross_mask: Tensor | None = None
    causal: bool = False  # use SDPA's is_causal (square, no padding)
    cross_causal: bool = False


class MultiheadAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.k_proj = Linear(dim, dim)  # registration order = the original's key order
        self.v_proj = Linear(dim, dim)
        self.q_proj = Linear(dim, dim)
        self.out_proj = Linear(dim, dim)

    def split(self, x: Tensor, parts: int = 1) -> Tensor | tuple[Tensor, ...]:
        """(N, T, parts * D) -> ``parts`` tensors (N, H, T, D/H) (one tensor when ``parts`` is 1)."""
        x = x.unflatten(-1, (parts * self.heads, -1)).transpose(1, 2)
        return x if parts == 1 else x.chunk(parts, dim=1)

    def project(self, x: Tensor, names: tuple[str, ...]) -> Tensor:
        """The projections ``names`` of ``x`` side by side, (N, T, len(names) * D), for decoding.

        One product with a layer made once from their weights (a copy, not in the state dict,
        made again when a weight changes; inference only): fewer calls per decoding step.
        Projections of mixed types (an int8 layer next to a float one) are computed one by one."""
        modules = [getattr(self, name) for name in names]
        if len({type(m) for m in modules}) > 1 or not hasattr(type(modules[0]), "concatenated"):
            return torch.cat([m(x) for m in modules], dim=-1)
        tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
        return cached(self, ("project", names), tensors, lambda: type(modules[0]).concatenated(modules))(x)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, is_causal: bool) -> Tensor:
        """Heads-split q, k, v -> output projection of the attended values, (N, Tq, D)."""
        p = self.dropout if self.training else 0.0
        if p > 0 and q.device.type == "cpu":  # no fused CPU kernel has dropout: see dgslm.lm.attention
            out = dropout_attention(q, k, v, mask, is_causal, p)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=is_causal)
        return self.out_proj(out.transpose(1, 2).flatten(2))


_KV = tuple[Tensor, Tensor]


def _append(cache: _KV, k: Tensor, v: Tensor, start: int) -> _KV:
    """Write (N, H, T, d) keys/values at ``start`` of the cache; return everything up to them."""
    end = start + k.shape[2]
    cache[0][:, :, start:end] = k
    cache[1][:, :, start:end] = v
    return cache[0][:, :, :end], cache[1][:, :, :end]


class DecoderLayer(nn.Module):
    """Pre-norm layer: self-attention, [cross-channel attention], feed-forward."""

    def __init__(self, cfg: SpeechDLMConfig, cross: bool):
        super().__init__()
        d = cfg.embed_dim
        self.channels = cfg.num_channels
        self.dropout = cfg.dropout
        self.activation_dropout = cfg.activation_dropout
        self.activation = F.relu if cfg.activation_fn == "relu" else F.gelu
        self.self_attn = MultiheadAttention(d, cfg.attention_heads, cfg.attention_dropout)
        self.cross_channel_attn = MultiheadAttention(d, cfg.attention_heads, cfg.attention_dropout) if cross else None
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.cross_channel_attn_layer_norm = nn.LayerNorm(d) if cross else None
        self.fc1 = Linear(d, cfg.ffn_dim)
        self.fc2 = Linear(cfg.ffn_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def _drop(self, x: Tensor, p: float) -> Tensor:
        return F.dropout(x, p, True) if self.training and p > 0 else x

    def forward(
        self, x: Tensor, masks: _Masks, kv: _KV | None = None, cross_kv: _KV | None = None, start: int = 0
    ) -> Tensor:
        """x: (B*C, T, D). kv / cross_kv: this layer's cached (keys, values), written at ``start``."""
        attn = self.self_attn
        if kv is not None and not torch.is_grad_enabled():  # decoding
            q, k, v = attn.split(attn.project(self.self_attn_layer_norm(x), ("q_proj", "k_proj", "v_proj")), 3)
        else:
            y = self.self_attn_layer_norm(x)
            q, k, v = attn.split(attn.q_proj(y)), attn.split(attn.k_proj(y)), attn.split(attn.v_proj(y))
        if kv is not None:
            k, v = _append(kv, k, v, start)
        x = x + self._drop(attn.attend(q, k, v, masks.self_mask, masks.causal), self.dropout)

        if self.cross_channel_attn is not None:
            x = x + self._drop(self._cross(x, masks, cross_kv, start), self.dropout)

        y = self._drop(self.activation(self.fc1(self.final_layer_norm(x))), self.activation_dropout)
        return x + self._drop(self.fc2(y), self.dropout)

    def _cross(self, h: Tensor, masks: _Masks, cross_kv: _KV | None, start: int) -> Tensor:
        """Query: LN(own state); keys/values: the other channels' raw states, position-major."""
        attn = self.cross_channel_attn
        rows, length, _ = h.shape
        q = attn.split(attn.q_proj(self.cross_channel_attn_layer_norm(h)))

        def others(x: Tensor, parts: int):  # (B*C, T, parts*D) -> parts x (B*C, H, T*(C-1), D/H)
            width = x.shape[-1]
            x = x.view(-1, self.channels, length, width)
            if self.channels == 2:  # channel c's keys come from channel 1 - c
                return attn.split(x.flip(1).view(rows, length, width), parts)
            # row c gets channels c+1, ..., c+C-1 (mod C), interleaved position-major
            x = torch.stack([x.roll(-j, dims=1) for j in range(1, self.channels)], dim=3)  # (B, C, T, C-1, width)
            return attn.split(x.view(rows, length * (self.channels - 1), width), parts)

        if cross_kv is not None and not torch.is_grad_enabled():  # decoding
            k, v = others(attn.project(h, ("k_proj", "v_proj")), 2)
        else:
            k, v = others(attn.k_proj(h), 1), others(attn.v_proj(h), 1)
        if cross_kv is not None:
            k, v = _append(cross_kv, k, v, start * (self.channels - 1))
        return attn.attend(q, k, v, masks.cross_mask, masks.cross_causal)


class SpeechDLMModel(nn.Module):
    def __init__(self, cfg: SpeechDLMConfig):
        super().__init__()
        self.cfg = cfg
        pad = cfg.pad_index
        self.embed_scale = math.sqrt(cfg.embed_dim) if cfg.scale_embedding else 1.0
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.input_dim, padding_idx=pad)
        self.project_in_dim = (
            Linear(cfg.input_dim, cfg.embed_dim, bias=False) if cfg.input_dim != cfg.embed_dim else None
        )
        self.embed_positions = None
        if cfg.positional_embeddings and cfg.learned_positions:
            self.embed_positions = nn.Embedding(cfg.max_positions + pad + 1, cfg.embed_dim, padding_idx=pad)
        table = torch.empty(0)
        if cfg.positional_embeddings and not cfg.learned_positions:
            table = sinusoidal_positions(cfg.max_positions + pad + 1, cfg.embed_dim, pad)
        self.register_buffer("sinusoids", table, persistent=False)
        self.layers = nn.ModuleList(DecoderLayer(cfg, cfg.is_cross_layer(i)) for i in range(cfg.layers))
        self.layer_norm = nn.LayerNorm(cfg.embed_dim) if cfg.final_layer_norm else None
        self.project_out_dim = (
            Linear(cfg.embed_dim, cfg.output_dim, bias=False) if cfg.output_dim != cfg.embed_dim else None
        )
        heads = cfg.prediction_heads
        self.output_projection = nn.ModuleList(Linear(cfg.output_dim, cfg.vocab_size, bias=False) for _ in range(heads))
        self.output_duration_prediction = (
            nn.ModuleList(Linear(cfg.output_dim, 1) for _ in range(heads)) if cfg.duration_prediction else None
        )
        self.reset_parameters()

    def tie_weights(self) -> None:
        if self.cfg.share_input_output_embed:
            self.output_projection[0].weight = self.embed_tokens.weight

    def reset_parameters(self) -> None:
        """The original's initialisation (needed only to train from scratch)."""
        cfg, pad = self.cfg, self.cfg.pad_index
        nn.init.normal_(self.embed_tokens.weight, 0.0, cfg.input_dim**-0.5)
        if self.embed_positions is not None:
            nn.init.normal_(self.embed_positions.weight, 0.0, cfg.embed_dim**-0.5)
        with torch.no_grad():
            self.embed_tokens.weight[pad].zero_()
            if self.embed_positions is not None:
                self.embed_positions.weight[pad].zero_()
        for module in self.modules():
            if isinstance(module, MultiheadAttention):
                for proj in (module.q_proj, module.k_proj, module.v_proj):
                    nn.init.xavier_uniform_(proj.weight, gain=1 / math.sqrt(2))
                nn.init.xavier_uniform_(module.out_proj.weight)
                nn.init.zeros_(module.out_proj.bias)
        for head in self.output_projection:
            nn.init.normal_(head.weight, 0.0, cfg.output_dim**-0.5)
        self.tie_weights()

    def make_cache(self, batch_size: int, max_length: int, device=None, dtype=None) -> KVCache:
        """An empty cache for incremental decoding of up to ``max_length`` positions."""
        weight = self.embed_tokens.weight
        return KVCache(self.cfg, batch_size, max_length, device or weight.device, dtype or weight.dtype)

    def _positions(self, tokens: Tensor, start: int, has_pad: bool) -> Tensor:
        """Position vectors: ids pad+1, pad+2, ... (pad tokens get the zero row ``pad``)."""
        pad, length = self.cfg.pad_index, tokens.shape[-1]
        table = self.embed_positions.weight if self.embed_positions is not None else self.sinusoids
        first = pad + 1 + start
        if first + length > table.shape[0] and self.embed_positions is None:
            grown = sinusoidal_positions(first + length, self.cfg.embed_dim, pad)
            self.sinusoids = table = grown.to(table.device, table.dtype)
        if not has_pad:
            return table[first : first + length]
        mask = tokens.ne(pad)
        ids = torch.cumsum(mask, dim=-1) * mask + pad
        return F.embedding(ids, table)

    def embed(self, tokens: Tensor, start: int = 0, has_pad: bool = False) -> Tensor:
        """(B, C, T) ids -> (B, C, T, embed_dim): scaled embedding [-> project_in] + positions."""
        x = self.embed_scale * self.embed_tokens(tokens)
        if self.project_in_dim is not None:
            x = self.project_in_dim(x)
        if self.cfg.positional_embeddings:
            x = x + self._positions(tokens, start, has_pad)
        return x

    def _masks(self, tokens: Tensor, cache: KVCache | None, has_pad: bool) -> _Masks:
        channels, length = tokens.shape[1], tokens.shape[2]
        span = channels - 1
        device = tokens.device
        if cache is not None:  # new positions start..start+T-1 attend to every cached key <= them
            if length == 1:
                return _Masks()
            start = cache.length
            query = torch.arange(start, start + length, device=device)[:, None]
            keys = torch.arange(start + length, device=device)
            return _Masks(self_mask=keys <= query, cross_mask=keys.repeat_interleave(span) <= query)
        if not has_pad:
            if span == 1:
                return _Masks(causal=True, cross_causal=True)
            causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()
            return _Masks(causal=True, cross_mask=causal.repeat_interleave(span, dim=1))
        # key padding from channel 0's tokens; the diagonal stays open so no row is empty
        batch = tokens.shape[0]
        eye = torch.eye(length, dtype=torch.bool, device=device)
        allowed = eye | tokens[:, 0, None, :].ne(self.cfg.pad_index)
        allowed = allowed & torch.ones_like(eye).tril()  # (B, T, T)

        def per_row(mask: Tensor) -> Tensor:
            return mask[:, None, None].expand(batch, channels, 1, *mask.shape[1:]).flatten(0, 1)

        return _Masks(self_mask=per_row(allowed), cross_mask=per_row(allowed.repeat_interleave(span, dim=-1)))

    def forward(self, tokens: Tensor, cache: KVCache | None = None, return_hidden: bool = False) -> SpeechDLMOutput:
        """tokens (B, C, T), channels in ``cfg.channels`` order. With a cache, the T tokens are
        the next positions (from ``cache.length``; pad tokens are not masked) and are appended."""
        batch, channels, length = tokens.shape
        if channels != self.cfg.num_channels:
            raise ValueError(f"expected {self.cfg.num_channels} channels, got {channels}")
        start = 0
        if cache is not None:
            start = cache.length
            if start + length > cache.max_length:
                raise ValueError(f"cache full: {start} + {length} > max_length {cache.max_length}")
            has_pad = False
        else:
            has_pad = bool(tokens.eq(self.cfg.pad_index).any())
        x = self.embed(tokens, start, has_pad)
        x = F.dropout(x, self.cfg.dropout, self.training).flatten(0, 1)  # (B*C, T, D)
        masks = self._masks(tokens, cache, has_pad)

        hidden = [x] if return_hidden else None
        first_cross = self.cfg.layers - self.cfg.num_cross_layers
        use_checkpoint = self.cfg.checkpoint_activations and self.training and cache is None
        # cuDNN attention builds a new plan for every key length: never while decoding
        backends = sdpa_kernel(_DECODING_BACKENDS) if cache is not None and x.is_cuda else contextlib.nullcontext()
        with backends:
            for i, layer in enumerate(self.layers):
                if cache is not None:
                    cross_kv = cache.cross_layers[i - first_cross] if i >= first_cross else None
                    x = layer(x, masks, cache.self_layers[i], cross_kv, start)
                elif use_checkpoint:
                    x = checkpoint(layer, x, masks, use_reentrant=False)
                else:
                    x = layer(x, masks)
                if hidden is not None:
                    hidden.append(x)
        if cache is not None:
            cache.advance(length)

        if self.layer_norm is not None:
            x = self.layer_norm(x)
        if self.project_out_dim is not None:
            x = self.project_out_dim(x)
        features = x.view(batch, channels, length, -1)
        heads = self.output_projection
        if len(heads) == 1:
            logits = heads[0](features).unsqueeze(2)
        else:
            logits = torch.stack([head(features) for head in heads], dim=2)
        durations = None
        if self.output_duration_prediction is not None:
            durations = torch.cat([head(features) for head in self.output_duration_prediction], dim=-1)
            durations = durations.transpose(2, 3)
        if hidden is not None:
            hidden = [h.view(batch, channels, length, -1) for h in hidden]
        return SpeechDLMOutput(logits=logits, durations=durations, features=features, hidden_states=hidden)

    def num_parameters(self) -> int:
        """Unique parameters (tied weights counted once)."""
        return sum(p.numel() for p in self.parameters())
