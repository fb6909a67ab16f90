"""``SpeechDLM``: the Python API, mirroring the original's ``SpeechDLM.from_pretrained`` hub.

>>> lm = SpeechDLM.from_pretrained("checkpoint", checkpoint_file="speech_dlm_base.pt",
...                                data_name_or_path="checkpoint").eval()
>>> out = lm.forward_units({"unitA": "7 376 376", "unitB": "7 499 415"})
>>> out.logits.shape  # (1, C, K, T + 1, V): the input starts with eos
>>> lm.sample({"unitA": "7 376 376", "unitB": "7 499 415"}, max_len_b=100, seed=1)  # options by name
>>> lm.sample(prompts, GenerationConfig(max_len_b=100, temperature=0.8), verbose=True)

This is the unit-string layer over the tensor core :mod:`dgslm.lm.generate`: prompts in,
batching like the original, the best hypotheses out as unit strings, the original's verbose
log. Every generation option travels in one :class:`~dgslm.lm.generate.GenerationConfig`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from dgslm.errors import DgslmError
from dgslm.lm.batching import batch_by_size, ordered_indices
from dgslm.lm.checkpoint import (
    build_model,
    is_pretrained_folder,
    load_fairseq_checkpoint,
    load_model_dictionaries,
    load_pretrained,
)
from dgslm.lm.config import SpeechDLMConfig
from dgslm.lm.dataset import discover_channels
from dgslm.lm.generate import (
    GenerationConfig,
    Hypothesis,
    batch_seed,
    cache_bytes_per_prompt,
    generate_batch,
    make_generator,
    with_options,
)
from dgslm.lm.model import SpeechDLMModel, SpeechDLMOutput
from dgslm.units.dictionary import Dictionary
from dgslm.units.unit_files import tokenize_line

logger = logging.getLogger(__name__)

Prompt = Mapping[str, str] | Tensor  # {channel: "u u u"}, or (C, P) ids in channel order


class SpeechDLM:
    """A SpeechDLM model with its per-channel dictionaries."""

    def __init__(self, model: SpeechDLMModel, dicts: Mapping[str, Dictionary]):
        self.model = model
        self.cfg: SpeechDLMConfig = model.cfg
        self.channels: tuple[str, ...] = model.cfg.channels
        self.dicts: dict[str, Dictionary] = {channel: dicts[channel] for channel in self.channels}
        self.dictionary: Dictionary = self.dicts[self.channels[0]]

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str | os.PathLike,
        checkpoint_file: str = "checkpoint_best.pt",
        data_name_or_path: str | os.PathLike = ".",
    ) -> SpeechDLM:
        """Load ``model_name_or_path/checkpoint_file`` (an original ``.pt``) with the
        ``dict.<channel>.txt`` files of ``data_name_or_path`` (relative to the model folder when
        it starts with "."), or one of our folders (``model.safetensors`` + ``config.json``). In
        eval mode, as the original's hub."""
        root = Path(model_name_or_path)
        if root.is_dir() and is_pretrained_folder(root):
            return cls(*load_pretrained(root)).eval()
        path = root / checkpoint_file if root.is_dir() else root
        data = Path(data_name_or_path)
        if str(data_name_or_path).startswith("."):
            data = (root if root.is_dir() else root.parent) / data
        cfg, state, raw_cfg = load_fairseq_checkpoint(path)
        task = raw_cfg.get("task") if isinstance(raw_cfg.get("task"), Mapping) else raw_cfg
        if not task.get("channels"):  # like the original: every dict.<channel>.txt of the data folder
            try:
                cfg = dataclasses.replace(cfg, channels=discover_channels(data))
            except ValueError as err:  # fewer than 2 channels
                raise DgslmError(str(err), data) from None
        return cls(build_model(cfg, state, path), load_model_dictionaries(data, cfg)).eval()

    # ---- device and mode -------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.model.embed_tokens.weight.device

    def eval(self) -> SpeechDLM:
        self.model.eval()
        return self

    def train(self, mode: bool = True) -> SpeechDLM:
        self.model.train(mode)
        return self

    def to(self, *args: Any, **kwargs: Any) -> SpeechDLM:
        self.model.to(*args, **kwargs)
        return self

    def cuda(self, device: int | None = None) -> SpeechDLM:
        self.model.cuda(device)
        return self

    def cpu(self) -> SpeechDLM:
        self.model.cpu()
        return self

    # ---- units ---------------------------------------------------------------------------

    def encode_prompt(
        self,
        units: Mapping[str, str],
        strict: bool = False,
        path: str | os.PathLike | None = None,
        line: int | None = None,
    ) -> Tensor:
        """``{channel: "u u u"}`` -> (C, P) ids. Unknown units become ``<unk>`` (a free position),
        or with ``strict`` a DgslmError; errors name ``path:line``."""
        if set(units) != set(self.channels):
            raise DgslmError(
                f"prompt channels {sorted(units)} differ from the model's {list(self.channels)}", path, line
            )
        encoded = [
            self.dicts[channel].encode_symbols(tokenize_line(units[channel]), False, strict, path, line)
            for channel in self.channels
        ]
        lengths = {channel: len(ids) for channel, ids in zip(self.channels, encoded)}
        if len(set(lengths.values())) > 1:
            raise DgslmError(f"prompt channels have different lengths {lengths}", path, line)
        if any(i in (self.dictionary.bos(), self.dictionary.eos()) for ids in encoded for i in ids):
            raise DgslmError("prompt contains <s> or </s>; only units, <unk> or <pad> are allowed", path, line)
        return torch.tensor(encoded, dtype=torch.long).view(len(self.channels), -1)

    def encode(self, units: Mapping[str, str]) -> Tensor:
        """``{channel: "u u u"}`` -> (C, T + 1) ids: eos first, then the units (unknown units
        -> unk), as the original feeds its decoder."""
        ids = self.encode_prompt(units)
        eos = torch.full((len(self.channels), 1), self.dictionary.eos(), dtype=torch.long)
        return torch.cat([eos, ids], dim=1)

    def decode(self, ids: Tensor) -> dict[str, str]:
        """(C, T) ids, e.g. a :class:`Hypothesis`'s tokens -> ``{channel: "u u u"}``."""
        return {channel: self.dicts[channel].string(ids[c]) for c, channel in enumerate(self.channels)}

    @functools.cached_property
    def _unit_tables(self) -> tuple[list[Tensor], list[Tensor]]:
        """Per channel: id of every unit value (unk where missing) and value of every id (-1 for
        symbols that are not units)."""
        ids_of_values, values_of_ids = [], []
        for channel in self.channels:
            units = {int(s): i for i, s in enumerate(self.dicts[channel].symbols) if s.isdigit()}
            ids = torch.full((max(units, default=0) + 1,), self.dictionary.unk(), dtype=torch.long)
            values = torch.full((len(self.dicts[channel]),), -1, dtype=torch.long)
            ids[list(units)] = torch.tensor(list(units.values()), dtype=torch.long)
            values[list(units.values())] = torch.tensor(list(units), dtype=torch.long)
            ids_of_values.append(ids)
            values_of_ids.append(values)
        return ids_of_values, values_of_ids

    def unit_ids(self, values: Tensor) -> Tensor:
        """(C, T) unit values (cluster numbers, as the units encoder gives them) -> (C, T) ids of
        each channel's dictionary; a value the dictionary lacks becomes ``<unk>`` (a free position)."""
        rows = []
        for row, table in zip(values.long().cpu(), self._unit_tables[0], strict=True):
            inside = (row >= 0) & (row < len(table))
            rows.append(torch.where(inside, table[row.clamp(0, len(table) - 1)], self.dictionary.unk()))
        return torch.stack(rows)

    def unit_values(self, ids: Tensor) -> Tensor:
        """(C, T) dictionary ids -> (C, T) unit values (what a vocoder reads); -1 for a symbol that
        is not a unit."""
        return torch.stack([table[row] for row, table in zip(ids.long().cpu(), self._unit_tables[1], strict=True)])

    @torch.no_grad()
    def forward_units(self, units: Mapping[str, str]) -> SpeechDLMOutput:
        """Every head's logits and durations for one ``{channel: units}`` input (batch of 1)."""
        return self.model(self.encode(units).unsqueeze(0).to(self.device))

    # ---- generation ------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Prompt] | Prompt,
        config: GenerationConfig | int | None = None,
        max_tokens: int | None = None,
        max_sentences: int | None = None,
        max_positions: int | None = None,
        skip_invalid_size_inputs: bool = False,
        progress: bool = False,
        max_cache_gb: float = 4.0,
        verbose: bool = False,
        shard: tuple[int, int] = (0, 1),
        **options: Any,
    ) -> list[list[Hypothesis] | None] | list[Hypothesis]:
        """All hypotheses of every prompt, best first, in input order (None for a prompt skipped
        as too long). A prompt is ``{channel: "u u u"}``, (C, P) ids, or the original's
        tokenized ``{channel: ids ending with eos}``; ``options`` are GenerationConfig fields by
        name that replace ``config``'s.

        The original's call works too: ``hub.generate([hub.encode(units)], beam=5,
        sampling=False, max_len_b=100)`` (``config`` may be its positional ``beam``; a single
        prompt returns its list of hypotheses; ``hypo["tokens"]``, ``hypo["score"]`` and
        ``hypo["positional_scores"]`` read as the original's dicts).

        Prompts are batched like the original (sorted by length, at most ``max_tokens`` padded
        prompt tokens and ``max_sentences`` prompts per batch); a prompt longer than
        ``max_positions - 1`` units (or the model's, without a context window) raises unless
        ``skip_invalid_size_inputs``. A batch whose KV cache would exceed ``max_cache_gb`` is
        decoded in several passes (same padding, so the same outputs for beam search; sampling
        then draws its random numbers in another order).

        ``config.seed`` seeds the sampling batch by batch: batch ``i`` (in :meth:`plan_batches`
        order) draws from its own generator seeded :func:`~dgslm.lm.generate.batch_seed` (the
        seed itself for batch 0), so ``shard=(K, N)``, which decodes only batches ``K, K + N,
        ...`` (the other prompts give None), gives those prompts exactly what the whole run
        gives them: what rank K of N does under torchrun. ``seed=None``: torch's global
        generator, one stream for the whole run, as the original.
        """
        if isinstance(config, int):  # the original's generate(tokenized_sentences, beam, ...)
            config, options = None, {**options, "beam": config}
        config = with_options(config, options)
        if isinstance(prompts, Mapping) or (isinstance(prompts, Tensor) and prompts.dim() == 2):
            batching = dict(max_tokens=max_tokens, max_sentences=max_sentences, max_positions=max_positions,
                            skip_invalid_size_inputs=skip_invalid_size_inputs, progress=progress,
                            max_cache_gb=max_cache_gb, verbose=verbose, shard=shard)  # fmt: skip
            return self.generate([prompts], config, **batching)[0]
        ids = self._checked_ids(prompts)
        batches = self._batches(ids, config, max_tokens, max_sentences, max_positions, skip_invalid_size_inputs)
        sizes = [p.shape[1] + 1 for p in ids]  # with the start symbol
        rank, world = shard
        mine = [(index, batch) for index, batch in enumerate(batches) if index % world == rank]
        if config.sampling and config.seed is None:
            make_generator(None, self.device)  # the original's hidden draw, once
        results: list[list[Hypothesis] | None] = [None] * len(ids)
        total = sum(len(batch) for _, batch in mine)
        with tqdm(total=total, disable=not progress, unit="prompt", desc="sample") as bar:
            for index, batch in mine:
                generator = None
                if config.sampling and config.seed is not None:
                    generator = make_generator(batch_seed(config.seed, index), self.device)
                width = max(sizes[i] for i in batch.tolist()) - 1
                padded = torch.full((len(batch), len(self.channels), width), self.dictionary.pad(), dtype=torch.long)
                for row, i in enumerate(batch.tolist()):
                    padded[row, :, : ids[i].shape[1]] = ids[i]
                per_pass = max(1, int(max_cache_gb * 2**30 // cache_bytes_per_prompt(self.model, config, width + 1)))
                for start in range(0, len(batch), per_pass):
                    part = batch[start : start + per_pass].tolist()
                    hypos = generate_batch(self.model, padded[start : start + per_pass], config, self.dictionary,
                                           generator)  # fmt: skip
                    for i, prompt_hypos in zip(part, hypos):
                        results[i] = [dataclasses.replace(h, channels=self.channels) for h in prompt_hypos]
                        if verbose and results[i]:
                            self.log_hypotheses(self.decode(ids[i]), results[i])
                    bar.update(len(part))
        return results

    def plan_batches(
        self,
        prompts: Sequence[Prompt],
        config: GenerationConfig,
        max_tokens: int | None = None,
        max_sentences: int | None = None,
        max_positions: int | None = None,
        skip_invalid_size_inputs: bool = False,
    ) -> list[np.ndarray]:
        """The batches of prompt indices that :meth:`generate` decodes, in order, as the
        original makes them: sorted by length, at most ``max_tokens`` padded prompt tokens and
        ``max_sentences`` prompts each; prompts longer than the limit are left out (or raise)."""
        ids = self._checked_ids(prompts)
        return self._batches(ids, config, max_tokens, max_sentences, max_positions, skip_invalid_size_inputs)

    def _checked_ids(self, prompts: Sequence[Prompt]) -> list[Tensor]:
        ids = [self._prompt_ids(p) for p in prompts]
        if shapes := [tuple(p.shape) for p in ids if p.dim() != 2 or p.shape[0] != len(self.channels)]:
            raise DgslmError(f"a prompt of ids must be ({len(self.channels)} channels, P units), got {shapes[0]}")
        return ids

    def _batches(
        self,
        ids: Sequence[Tensor],
        config: GenerationConfig,
        max_tokens: int | None,
        max_sentences: int | None,
        max_positions: int | None,
        skip_invalid_size_inputs: bool,
    ) -> list[np.ndarray]:
        config.window(self.cfg.max_positions)  # a window beyond the model's positions fails before any work
        sizes = np.array([p.shape[1] + 1 for p in ids], dtype=np.int64)  # with the start symbol
        limit = config.position_limit(max_positions, self.cfg.max_positions)
        valid = sizes <= limit
        for i in np.flatnonzero(~valid):
            if not skip_invalid_size_inputs:
                raise DgslmError(f"prompt {i + 1} has {sizes[i] - 1} units, more than the model's {limit - 1}")
            logger.warning("skipping prompt %d: %d units, more than %d", i + 1, sizes[i] - 1, limit - 1)
        order = ordered_indices(sizes, seed=0, shuffle=False)
        order = order[valid[order]]
        return batch_by_size(order, sizes, max_tokens, max_sentences) if len(order) else []

    def _prompt_ids(self, prompt: Prompt) -> Tensor:
        """(C, P) ids of a prompt: unit strings are encoded; the eos that starts :meth:`encode`'s
        ids or ends the original's tokenized ``{channel: ids}`` is dropped."""
        if isinstance(prompt, Mapping) and all(isinstance(v, Tensor) for v in prompt.values()):
            if set(prompt) != set(self.channels):
                raise DgslmError(f"prompt channels {sorted(prompt)} differ from the model's {list(self.channels)}")
            if len({len(prompt[channel]) for channel in self.channels}) > 1:
                raise DgslmError("prompt channels have different lengths")
            ids = torch.stack([prompt[channel].long().cpu() for channel in self.channels])
            return ids[:, :-1] if ids.shape[1] and bool(ids[:, -1].eq(self.dictionary.eos()).all()) else ids
        if not isinstance(prompt, Tensor):
            return self.encode_prompt(prompt)
        if prompt.dim() == 2 and prompt.shape[1] and bool(prompt[:, 0].eq(self.dictionary.eos()).all()):
            return prompt[:, 1:]
        return prompt

    def sample(
        self,
        input_sequences: Mapping[str, str] | Sequence[Mapping[str, str]],
        config: GenerationConfig | None = None,
        verbose: bool = False,
        **options: Any,
    ) -> dict[str, str] | list[dict[str, str] | None]:
        """Continue ``{channel: "u u u"}`` prompts; returns the best hypothesis as unit strings
        (prompt included, ``max_len`` units per channel). A dict in gives a dict out, a list
        gives a list (None for a skipped prompt).

        ``config`` carries the generation options; ``options`` are, by name, GenerationConfig
        fields that replace the config's (``max_len_b=100, seed=1``) and the batching options
        of :meth:`generate` (``max_tokens``, ``max_sentences``, ``max_positions``,
        ``skip_invalid_size_inputs``, ``progress``, ``max_cache_gb``)."""
        fields = {f.name for f in dataclasses.fields(GenerationConfig)}
        config = with_options(config, {k: v for k, v in options.items() if k in fields})
        batching = {k: v for k, v in options.items() if k not in fields}
        single = isinstance(input_sequences, Mapping)
        inputs = [input_sequences] if single else list(input_sequences)
        outputs: list[dict[str, str] | None] = []
        for hypos in self.generate(inputs, config, verbose=verbose, **batching):
            outputs.append(self.decode(hypos[0].tokens) if hypos else None)
        return outputs[0] if single else outputs

    def log_hypotheses(self, units: Mapping[str, str], hypos: Sequence[Hypothesis]) -> None:
        """The original's verbose lines: ``S`` prompt, then ``H`` score + text and ``P`` per-step
        log-probs of every hypothesis."""
        logger.info("S\t%s", {channel: units[channel] for channel in self.channels})
        for hypo in hypos:
            logger.info("H\t%s\t%s", hypo.score, self.decode(hypo.tokens))
            positional = {
                channel: " ".join(f"{x:.4f}" for x in hypo.positional_scores[:, c].tolist())
                for c, channel in enumerate(self.channels)
            }
            logger.info("P\t%s", positional)
