"""Continue unit prompts with a SpeechDLM: sampling or joint beam search over both channels.

The tensor core: :class:`GenerationConfig` (every option), :func:`generate_batch` (a batch of
(B, C, P) id prompts -> hypotheses), masking and prefill. Unit strings, batching of many
prompts and the verbose log are the hub's (:class:`dgslm.lm.hub.SpeechDLM`).

Same semantics as the original ``hub.sample`` (spec §5): every prompt unit is forced
(``<pad>``/``<unk>`` prompt positions are generated freely, so a channel can be left open),
eos is banned until ``max_len`` so every output has exactly ``max_len`` units *including
the prompt*, and the duration head makes the model copy a unit until its predicted run
length is used up. Decoding uses the model's KV cache: the part of the prompt that is forced
in every row is fed in one chunk, then one decoder step per frame.

With a ``context_window`` (ours, not the original's) outputs may be longer than the model's
positions: whenever the cache holds ``context_window`` positions it is rebuilt from the last
half of them, numbered from 0 again, as the model saw them in its training blocks. A window of
None is the model's own training block length, set by the hub
(:meth:`dgslm.lm.hub.SpeechDLM.resolve_window`) before decoding.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dgslm.errors import DgslmError
from dgslm.lm.model import KVCache, SpeechDLMModel, SpeechDLMOutput
from dgslm.lm.search import NEG_INF, DurationCounter, beam_step, block_repeated_ngrams, keep_only, sample_step
from dgslm.units.dictionary import EOS_ID, Dictionary

PREFILL_CHUNK = 1024  # prompt positions per forward call when the prompt is fed at once


@dataclass(frozen=True)
class GenerationConfig:
    """Every option of a generation, with the names and defaults of ``sample_speech_dlm.py``.

    The one carrier of these options: the CLIs build it from their flags
    (:func:`dgslm.cli.options.generation_config`), the hub, the pipeline and the decoder
    receive it by value; to change a field, ``dataclasses.replace(config, name=value)`` (or
    :func:`with_options`). It is validated when built (one-line DgslmError); what depends on the
    model or the prompt is checked by :meth:`window`, :meth:`temperatures` and :meth:`max_length`.

    ``max_len = min(int(max_len_a * S + max_len_b), max_positions - 1)`` is the *total*
    output length in units per channel, prompt included (S = 1 + longest prompt of the batch).
    With ``context_window`` N > 0 the model attends to at most the last N positions and
    ``max_len`` is not capped by ``max_positions`` (see the module docstring); None stands for
    the model's training block length (resolved by the hub, ``dgslm generate``'s default).
    """

    max_len_a: float = 0
    max_len_b: int = 500
    sampling: bool = True  # False: joint beam search (beam 1 = greedy)
    beam: int = 5  # with sampling: number of independent samples, the best one is returned
    temperature: float | tuple[float, ...] = 1.0  # one value, or one per channel
    sampling_topk: int = -1
    sampling_topp: float = -1.0
    duration_temperature: float = 1.0  # > 1: shorter runs (faster speech)
    lenpen: float = 1.0
    unkpen: float = 0.0
    min_len: int = 1
    # Ban every symbol that is not a unit (<s>, <unk>, madeupword...) at free positions. The
    # original can sample them (and drops <s> from the output string, leaving a channel one
    # unit short); the audio pipeline needs exactly max_len real units per channel.
    units_only: bool = False
    context_window: int | None = 0  # 0: attend to the whole output (the original); None: see above
    # The original hub's three other options (fairseq's meanings): the output is exactly as
    # long as the longest prompt (its channel 0; max_len_a/b ignored); no n-gram of this size
    # occurs twice in a channel (a forced prompt unit or duration copy is never blocked; the
    # original crashes with any size > 0); scores are not divided by (length + 1) ** lenpen.
    match_source_len: bool = False
    no_repeat_ngram_size: int = 0
    unnormalized: bool = False
    # Seed of the sampling (see make_generator and batch_seed); None: torch's global generator.
    # Read by the callers that make the random generators (the hub), not by generate_batch.
    seed: int | None = None

    def __post_init__(self) -> None:
        """Raise DgslmError on options the original rejects or cannot run."""
        if not isinstance(self.temperature, (int, float)):
            object.__setattr__(self, "temperature", tuple(float(t) for t in self.temperature))
        temps = self.temperature if isinstance(self.temperature, tuple) else (self.temperature,)
        if not temps or any(not t > 0 for t in temps):
            raise DgslmError(f"temperature must be > 0, got {self.temperature}")
        if not self.duration_temperature > 0:
            raise DgslmError(f"duration temperature must be > 0, got {self.duration_temperature}")
        if self.beam < 1:
            raise DgslmError(f"beam must be >= 1, got {self.beam}")
        if not self.sampling and (self.sampling_topk > 0 or self.sampling_topp > 0):
            raise DgslmError("top-k / top-p need sampling (drop --beam-search)")
        if self.sampling_topp > 1:
            raise DgslmError(f"top-p must be in (0, 1], got {self.sampling_topp}")
        if self.no_repeat_ngram_size < 0:
            raise DgslmError(f"no_repeat_ngram_size must be >= 0, got {self.no_repeat_ngram_size}")
        if self.context_window is not None and (self.context_window < 0 or self.context_window == 1):
            raise DgslmError(f"context window must be 0 (off) or >= 2 positions, got {self.context_window}")

    def window(self, max_positions: int) -> int:
        """Positions the model attends to: the context window, else all ``max_positions``."""
        if self.context_window is None:
            raise ValueError("context window None: resolve it with SpeechDLM.resolve_window first")
        if self.context_window > max_positions:
            raise DgslmError(f"context window {self.context_window} exceeds the model's {max_positions} positions")
        return self.context_window or max_positions

    def position_limit(self, max_positions: int | None, model_positions: int) -> float:
        """Most positions a prompt may take, its start symbol included: ``max_positions`` (the
        batching flag) and the model's, or only the flag with a context window (any prompt
        fits: only its last positions are attended to)."""
        if self.context_window:
            return max_positions or math.inf
        return min(max_positions or model_positions, model_positions)

    def temperatures(self, channels: int) -> list[float]:
        """One temperature per channel."""
        temps = self.temperature
        temps = list(temps) if isinstance(temps, tuple) else [float(temps)] * channels
        if len(temps) != channels:
            raise DgslmError(f"got {len(temps)} temperatures for {channels} channels")
        return temps

    def max_length(self, src_len: int, max_positions: int, source_units: int | None = None) -> int:
        """Output units per channel for a batch whose longest prompt has ``src_len - 1`` units
        (with ``match_source_len``: ``source_units``, the most non-pad units of a channel-0 prompt,
        default ``src_len - 1``)."""
        if self.match_source_len:
            return src_len - 1 if source_units is None else source_units
        max_len = int(self.max_len_a * src_len + self.max_len_b)
        if not self.context_window:
            max_len = min(max_len, min(max_positions, 100000) - 1)
        if max_len < 0:
            raise DgslmError(f"max_len_a * {src_len} + max_len_b = {max_len} units: must be >= 0")
        if self.min_len > max_len:
            raise DgslmError(f"min_len {self.min_len} is larger than the output length {max_len}")
        return max_len


def with_options(config: GenerationConfig | None, options: Mapping[str, Any]) -> GenerationConfig:
    """``config`` (default ``GenerationConfig()``) with the fields named in ``options`` replaced:
    the keyword convenience of the Python API, always by name."""
    config = GenerationConfig() if config is None else config
    if unknown := sorted(set(options) - {f.name for f in dataclasses.fields(GenerationConfig)}):
        raise TypeError(f"unknown generation option(s) {', '.join(unknown)}: see GenerationConfig")
    return dataclasses.replace(config, **options) if options else config


@dataclass
class Hypothesis:
    """One generated sequence: ``tokens`` (C, max_len) unit ids, prompt included, no eos;
    ``positional_scores`` (max_len + 1, C) the log-prob of every step, the final eos included;
    ``score`` the sum over channels of the summed log-probs / (max_len + 1) ** lenpen (not
    divided with ``unnormalized``)."""

    tokens: Tensor
    score: float
    positional_scores: Tensor
    channels: tuple[str, ...] = ()  # set by the hub: the keys of the original's dict view
    eos: int = EOS_ID

    def __getitem__(self, key: str) -> Any:
        """The original's hypothesis dict: ``tokens`` ``{channel: (max_len + 1,) ids ending with
        eos}``, ``score`` (a 0-d tensor) and ``positional_scores`` (max_len + 1, C)."""
        if key == "tokens":
            eos = self.tokens.new_full((1,), self.eos)
            return {channel: torch.cat([self.tokens[c], eos]) for c, channel in enumerate(self.channels)}
        if key == "score":
            return torch.tensor(self.score)
        if key == "positional_scores":
            return self.positional_scores
        raise KeyError(key)


# ---- one batch of prompts ---------------------------------------------------------------


def _main_head(out: SpeechDLMOutput) -> tuple[Tensor, Tensor | None]:
    """Main (same-channel) head outputs: logits (N, C, T, V) and durations (N, C, T)."""
    durations = None if out.durations is None else out.durations[:, :, 0]
    return out.logits[:, :, 0], durations


def _mask_step(
    lprobs: Tensor,
    step: int,
    max_len: int,
    prompt: Tensor | None,
    copy: Tensor | None,
    previous: Tensor,
    dictionary: Dictionary,
    unkpen: float,
    banned: Tensor | None = None,
) -> Tensor:
    """Spec §5.3.3 on (rows, C, V) log-probs: ban pad (and eos before max_len), force prompt
    units (pad/unk prompt slots stay free), force copies of ``previous`` where ``copy``."""
    pad, eos, unk = dictionary.pad(), dictionary.eos(), dictionary.unk()
    lprobs = lprobs.nan_to_num(nan=NEG_INF, posinf=math.inf, neginf=NEG_INF)
    lprobs[..., pad] = NEG_INF
    if unkpen:
        lprobs[..., unk] -= unkpen
    if banned is not None:
        lprobs[..., banned] = NEG_INF
    if step >= max_len:
        return keep_only(lprobs, torch.full_like(previous, eos), torch.ones_like(previous, dtype=torch.bool))
    lprobs[..., eos] = NEG_INF
    token, force = previous, copy
    if prompt is not None:
        forced = prompt.ne(pad) & prompt.ne(unk)
        token = torch.where(forced, prompt, previous)
        force = forced if copy is None else forced | copy
    return lprobs if force is None else keep_only(lprobs, token, force)


def _non_units(dictionary: Dictionary, device: torch.device) -> Tensor:
    """Ids of the symbols that are not units: ``<s>``, ``<unk>`` and the ``madeupword`` padding
    (pad and eos are handled by the mask itself)."""
    ids = [dictionary.bos(), dictionary.unk()]
    ids += [i for i, symbol in enumerate(dictionary.symbols) if symbol.startswith("madeupword")]
    return torch.tensor(ids, dtype=torch.long, device=device)


def _prefill(model: SpeechDLMModel, tokens: Tensor, cache: KVCache, beam: int) -> tuple[Tensor, Tensor | None]:
    """Feed the known tokens (B, C, T) of every prompt once, in chunks of ``PREFILL_CHUNK``
    positions, then copy the cache to the ``beam`` rows of each prompt. Returns the main-head
    logits (B, C, T, V) and durations (B, C, T)."""
    starts = range(0, tokens.shape[2], PREFILL_CHUNK)
    outputs = [_main_head(model(tokens[:, :, i : i + PREFILL_CHUNK], cache=cache)) for i in starts]
    cache.reorder(torch.arange(tokens.shape[0], device=tokens.device).repeat_interleave(beam))
    durations = None if outputs[0][1] is None else torch.cat([d for _, d in outputs], dim=2)
    return torch.cat([logits for logits, _ in outputs], dim=2), durations


def _known_prefix(prompts: Tensor, dictionary: Dictionary) -> int:
    """Number of leading prompt positions forced in every row and channel."""
    free = prompts.eq(dictionary.pad()) | prompts.eq(dictionary.unk())
    return int(torch.cumprod((~free.any(dim=1)).all(dim=0).long(), 0).sum()) if prompts.shape[-1] else 0


@torch.inference_mode()
def generate_batch(
    model: SpeechDLMModel,
    prompts: Tensor,
    config: GenerationConfig,
    dictionary: Dictionary,
    generator: torch.Generator | None = None,
    on_step: Callable[[int, Tensor, Tensor | None], None] | None = None,
) -> list[list[Hypothesis]]:
    """Continue a batch of prompts (B, C, P) (right-padded with pad, channels in model order).

    Returns, per prompt, its finished hypotheses sorted by score (best first): ``beam``
    independent samples when sampling, else the final beam. ``on_step(step, lprobs, durations)``
    sees every step's (rows, C, V) log-probs before masking and (rows, C) raw durations.
    """
    cfg = model.cfg
    device = next(model.parameters()).device
    prompts = prompts.to(device)
    bsz, channels, _ = prompts.shape
    vocab = cfg.vocab_size
    beam = min(config.beam, (vocab - 1) ** channels)
    rows = bsz * beam
    source_units = int(prompts[:, 0].ne(dictionary.pad()).sum(-1).max()) if bsz else 0
    max_len = config.max_length(prompts.shape[-1] + 1, cfg.max_positions, source_units)
    window = min(config.window(cfg.max_positions), max_len + 1)
    prompts = prompts[:, :, :max_len]
    plen = prompts.shape[-1]
    prefix = prompts.repeat_interleave(beam, dim=0)
    known = min(_known_prefix(prompts, dictionary), window - 1)  # the rest is forced step by step

    tokens = prompts.new_full((rows, channels, max_len + 2), dictionary.pad())
    tokens[:, :, 0] = dictionary.eos()  # the start symbol
    banned = _non_units(dictionary, device) if config.units_only else None
    tokens[:, :, 1 : known + 1] = prefix[:, :, :known]
    cache = model.make_cache(bsz, window)
    logits, durations = _prefill(model, tokens[::beam, :, : known + 1], cache, beam)
    chunk_start = 0

    temperature = torch.tensor(config.temperatures(channels), device=device).view(channels, 1)
    counter = None
    if durations is not None:
        counter = DurationCounter(rows, channels, cfg.delayed_duration_target, config.duration_temperature, device)
    cumulative = torch.zeros(rows, channels, device=device)
    step_scores = torch.zeros(rows, channels, max_len + 1, device=device)
    sentence_offset = torch.arange(bsz, device=device)[:, None] * beam

    for step in range(max_len + 1):
        at = step - chunk_start
        lprobs = F.log_softmax(logits[:, :, at].float() / temperature, dim=-1)
        duration = None if durations is None else durations[:, :, at]
        if logits.shape[0] != rows:  # prefill outputs hold one row per prompt
            lprobs = lprobs.repeat_interleave(beam, dim=0)
            duration = None if duration is None else duration.repeat_interleave(beam, dim=0)
        if on_step is not None:
            on_step(step, lprobs.clone(), duration)
        previous = tokens[:, :, step]
        copy = None
        if counter is not None:
            repeated = previous.eq(tokens[:, :, step - 1]) if step > 0 else torch.zeros_like(previous, dtype=torch.bool)
            copy = counter.update(step, duration, repeated)
        prompt = prefix[:, :, step] if step < plen else None
        lprobs = _mask_step(lprobs, step, max_len, prompt, copy, previous, dictionary, config.unkpen, banned)
        if config.no_repeat_ngram_size and step < max_len:
            free = torch.ones_like(previous, dtype=torch.bool) if copy is None else ~copy
            if prompt is not None:
                free &= prompt.eq(dictionary.pad()) | prompt.eq(dictionary.unk())
            lprobs = block_repeated_ngrams(lprobs, tokens[:, :, : step + 1], config.no_repeat_ngram_size, free)

        lprobs4 = lprobs.view(bsz, beam, channels, vocab)
        source = None
        if config.sampling:
            chosen, scores = sample_step(lprobs4, step, config.sampling_topk, config.sampling_topp, generator)
            chosen, scores = chosen.view(rows, channels), scores.view(rows, channels)
            cumulative = cumulative + scores
        else:
            src, chosen, cum = beam_step(lprobs4, cumulative.view(bsz, beam, channels), step)
            chosen, cumulative = chosen.view(rows, channels), cum.view(rows, channels)
            if beam > 1:
                source = (src + sentence_offset).flatten()
                tokens, step_scores = tokens.index_select(0, source), step_scores.index_select(0, source)
                lprobs = lprobs.index_select(0, source)
                if counter is not None:
                    counter.reorder(source)
            scores = lprobs.gather(-1, chosen[..., None]).squeeze(-1)
        step_scores[:, :, step] = scores
        tokens[:, :, step + 1] = chosen

        if step < max_len and step + 1 >= chunk_start + logits.shape[2]:
            if cache.length == window:  # full: restart from the last half of the context
                cache.truncate(0)
                chunk_start = step + 2 - window // 2
                logits, durations = _main_head(model(tokens[:, :, chunk_start : step + 2], cache=cache))
            else:
                if source is not None:
                    cache.reorder(source)
                logits, durations = _main_head(model(chosen[..., None], cache=cache))
                chunk_start = step + 1

    norm = 1.0 if config.unnormalized else (max_len + 1) ** config.lenpen
    final = (cumulative / norm).sum(-1).view(bsz, beam).cpu()
    units = tokens[:, :, 1 : max_len + 1].view(bsz, beam, channels, max_len).cpu()
    step_scores = step_scores.transpose(1, 2).reshape(bsz, beam, max_len + 1, channels).cpu()
    results = []
    for b in range(bsz):
        order = torch.sort(final[b], descending=True, stable=True).indices.tolist()
        hypos = [Hypothesis(units[b, k], float(final[b, k]), step_scores[b, k]) for k in order]
        results.append([hypo for hypo in hypos if math.isfinite(hypo.score)])
    return results


# ---- around generate_batch ----------------------------------------------------------------


def make_generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    """The random generator of a sampling run.

    With a seed: a private generator on ``device`` seeded with it. Without: torch's global
    generator (None). Either way one int64 is first drawn from the CPU stream, as the
    original's data loader does, so a CPU run seeded like ``torch.manual_seed(seed)`` draws
    exactly the original's samples.
    """
    if seed is None:
        torch.empty((), dtype=torch.int64).random_()
        return None
    device = torch.device(device)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    if device.type == "cpu":
        torch.empty((), dtype=torch.int64).random_(generator=generator)
    return generator


def batch_seed(seed: int, index: int) -> int:
    """The seed of batch ``index`` (0-based, in decoding order) of a run seeded ``seed``.

    Batch 0 takes ``seed`` itself, so a run of one batch draws the original's numbers; batch
    ``i > 0`` a 64-bit seed that numpy's ``SeedSequence((seed mod 2**64, i))`` mixes, so that
    no batch shares its stream with another batch or another run's (as ``seed + i`` would
    with the run seeded ``seed + 1``). Every batch thus draws the same numbers whichever
    process decodes it: the samples do not depend on the number of torchrun ranks.
    """
    if index == 0:
        return seed
    return int(np.random.SeedSequence([seed % 2**64, index]).generate_state(1, np.uint64)[0])


def cache_bytes_per_prompt(model: SpeechDLMModel, config: GenerationConfig, src_len: int) -> int:
    """KV-cache bytes of one prompt (all its beam rows): keys and values of every self- and
    cross-attention layer, for every channel and output position."""
    cfg = model.cfg
    positions = min(config.max_length(src_len, cfg.max_positions) + 1, config.window(cfg.max_positions))
    layers = cfg.layers + cfg.num_cross_layers * (cfg.num_channels - 1)
    itemsize = next(model.parameters()).element_size()
    return config.beam * cfg.num_channels * layers * 2 * positions * cfg.embed_dim * itemsize
