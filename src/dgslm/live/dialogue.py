"""The dialogue step: one 20 ms frame of SpeechDLM decoding with one channel forced.

The person's channel gets their unit (forced, as a prompt unit in :mod:`dgslm.lm.generate`),
the model's channel a unit sampled with the options of a :class:`GenerationConfig`
(temperature, top-k/top-p, duration temperature; the duration head's copies as in
generation). The model's unit of frame t depends on both channels up to frame t - 1 only, so
it is sampled as soon as the person's unit of frame t - 1 is known (:meth:`DialogueStep.advance`).

Decoding keeps the KV cache of the last ``window`` positions (the ``context_window``, else the
model's positions) so that a session never ends and every frame costs the same: when the cache
is full, decoding restarts from the last ``window // 2`` positions, numbered from 0, exactly as
:func:`dgslm.lm.generate.generate_batch` does with a context window. That restart would cost
one forward over ``window // 2`` positions in one frame; instead a second cache is filled
with those positions one by one during the frames before (a "shadow"), so a frame costs at most
two one-position forwards.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor

from dgslm.errors import DgslmError
from dgslm.lm.generate import GenerationConfig, _non_units, make_generator
from dgslm.lm.hub import SpeechDLM
from dgslm.lm.search import NEG_INF, DurationCounter, keep_only, sample_step

FORCED_LPROB = -30.0  # log-prob of the stand-in for the person's forced unit in the random draw


class DialogueStep:
    """Frame-by-frame decoding: :meth:`advance` with the person's unit of the previous frame
    (None at the start) returns the model's unit of the current frame (both as unit ids);
    :meth:`hold` and :meth:`feed` skip a frame's forward pass and catch up later."""

    def __init__(self, lm: SpeechDLM, config: GenerationConfig, user_channel: int = 0):
        """``config``: the sampling options and ``seed`` (None: torch's global generator)."""
        if user_channel not in (0, 1) or len(lm.channels) != 2:
            raise DgslmError(f"the user channel must be 0 or 1 of a 2-channel SpeechDLM, got {user_channel}")
        if not config.sampling:
            raise DgslmError("beam search cannot run live (it revises past frames); use sampling")
        config = dataclasses.replace(lm.resolve_window(config), beam=1, units_only=True)
        self.lm, self.model, self.config = lm, lm.model.eval(), config
        self.user, self.bot = user_channel, 1 - user_channel
        self.device = lm.device
        self.window = config.window(self.model.cfg.max_positions)
        if self.window < 4:
            raise DgslmError(f"context window {self.window} is too small for live decoding (>= 4 positions)")
        self.temperature = config.temperatures(2)[self.bot]
        dictionary = lm.dicts[lm.channels[self.bot]]
        self.eos, self.pad, self.unk = dictionary.eos(), dictionary.pad(), dictionary.unk()
        self.banned = torch.cat([_non_units(dictionary, self.device), torch.tensor([self.pad, self.eos, self.unk],
                                device=self.device)])  # fmt: skip
        self.user_ids = self._unit_table(lm.dicts[lm.channels[self.user]])
        self.bot_units = [int(s) if s.isdigit() else -1 for s in dictionary.symbols]
        self.reset()

    @staticmethod
    def _unit_table(dictionary) -> dict[int, int]:
        return {int(s): i for i, s in enumerate(dictionary.symbols) if s.isdigit()}

    @torch.inference_mode()
    def reset(self) -> None:
        """A new session: empty caches, the random generator re-seeded."""
        self.generator = make_generator(self.config.seed, self.device)
        self.cache, self.shadow = (self.model.make_cache(1, self.window) for _ in range(2))
        self.tokens: list[Tensor] = []  # (2,) ids of every position fed (kept: the last window)
        self.frame = 0  # the frame whose model unit comes next
        self.counter = None
        if self.model.cfg.duration_prediction:
            counter = DurationCounter(1, 2, self.model.cfg.delayed_duration_target, self.config.duration_temperature,
                                      self.device)  # fmt: skip
            self.counter = counter
        self.pending: list[Tensor] = []  # the model's unit ids of the frames not yet fed
        self.logits, self.durations = self._feed(torch.tensor([self.eos, self.eos], device=self.device))

    @torch.inference_mode()
    def advance(self, user_unit: int | None) -> int:
        """Feed the frame before (the person's ``user_unit``, the model's unit), then sample and
        return the model's unit of the current frame. ``user_unit`` is None only at the start."""
        if user_unit is not None:
            self.feed(user_unit)
        chosen = self._sample()
        self.pending.append(chosen)
        self.frame += 1
        return self.bot_units[int(chosen)]

    def hold(self) -> int:
        """The model's unit of the current frame without a forward pass: its last unit again
        (a frame skipped to catch up); the person's unit of the frame before is fed later."""
        self.pending.append(self.pending[-1])
        self.frame += 1
        return self.bot_units[int(self.pending[-1])]

    @torch.inference_mode()
    def feed(self, user_unit: int) -> None:
        """Feed the oldest frame not yet fed: the person's ``user_unit`` and the model's unit."""
        if not self.pending:
            raise ValueError("no model unit to pair the person's unit with: call advance(None) first")
        pair = torch.empty(2, dtype=torch.long, device=self.device)
        pair[self.user] = self.user_ids.get(int(user_unit), self.unk)
        pair[self.bot] = self.pending.pop(0)
        self.logits, self.durations = self._feed(pair)

    def _sample(self) -> Tensor:
        """The model channel's unit from the current logits (copies forced by the durations).

        The random generator is used exactly as :func:`dgslm.lm.generate.generate_batch` uses it
        with the person's channel forced (one draw per channel and frame, in channel order; the
        person's draw is from a one-unit distribution), so that a live session samples the units
        offline generation samples from the same units and seed. With top-p that holds while the
        model gives the person's next unit a probability under p (offline, the forced unit's
        probability decides how many candidates its draw takes; live, the person's unit is not
        known yet when the model's is drawn)."""
        lprobs = torch.full((2, self.logits.shape[-1]), NEG_INF, device=self.device)
        lprobs[self.user, self.eos] = FORCED_LPROB  # the person's unit is forced: a one-unit distribution
        lprobs[self.bot] = F.log_softmax(self.logits[self.bot].float() / self.temperature, dim=-1)
        lprobs[self.bot, self.banned] = NEG_INF
        if self.counter is not None:  # as generate_batch: is the input unit a repeat of the one before?
            previous = self.tokens[-1]
            repeated = previous.eq(self.tokens[-2]) if self.frame > 0 else torch.zeros_like(previous, dtype=torch.bool)
            copy = self.counter.update(self.frame, self.durations[None], repeated[None])[0]
            lprobs = keep_only(lprobs, previous, copy & (torch.arange(2, device=self.device) == self.bot))
        chosen, _ = sample_step(lprobs.view(1, 1, 2, -1), self.frame, self.config.sampling_topk,
                                self.config.sampling_topp, self.generator)  # fmt: skip
        return chosen.view(2)[self.bot]

    def _feed(self, pair: Tensor) -> tuple[Tensor, Tensor | None]:
        """Append one position (both channels' ids) -> its (2, V) logits and (2,) durations."""
        self.tokens.append(pair)
        del self.tokens[: -self.window]
        half = self.window // 2
        if self.cache.length == self.window:  # full: the shadow holds the last half but this position
            self.cache, self.shadow = self.shadow, self.cache
            self.shadow.truncate(0)
        elif self.cache.length >= self.window - half:  # the shadow follows the positions the restart keeps
            need = half - 1 - (self.window - 1 - self.cache.length)  # positions of the restart fed so far
            while self.shadow.length < need:
                self._forward(self.tokens[len(self.tokens) - need + self.shadow.length], self.shadow)
        return self._forward(pair, self.cache)

    def _forward(self, pair: Tensor, cache) -> tuple[Tensor, Tensor | None]:
        out = self.model(pair.view(1, 2, 1), cache=cache)
        durations = None if out.durations is None else out.durations[0, :, 0, -1]
        return out.logits[0, :, 0, -1], durations
