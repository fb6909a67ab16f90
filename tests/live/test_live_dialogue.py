"""The live dialogue step against offline generation (dgslm.lm.generate.generate_batch)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dgslm.errors import DgslmError
from dgslm.live.dialogue import DialogueStep
from dgslm.lm.generate import GenerationConfig, generate_batch, make_generator
from dgslm.lm.hub import SpeechDLM

pytestmark = pytest.mark.usefixtures("one_thread")

CHECKPOINTS = ("speech_dlm_small.pt", "speech_dlm_small_cross.pt")  # delayed / non-delayed durations


def _hub(reference, name: str) -> SpeechDLM:
    folder = reference / "speechdlm" / "checkpoint"
    return SpeechDLM.from_pretrained(folder, checkpoint_file=name, data_name_or_path=folder).eval()


def _person(hub: SpeechDLM, frames: int, seed: int = 0) -> list[int]:
    """Person units with runs (as speech units have), drawn from the model's unit symbols."""
    rng = np.random.default_rng(seed)
    units = [int(s) for s in hub.dictionary.symbols if s.isdigit()][:40]
    out: list[int] = []
    while len(out) < frames:
        out += [int(rng.choice(units))] * int(rng.integers(1, 6))
    return out[:frames]


def _live(hub: SpeechDLM, person: list[int], config: GenerationConfig, user: int, seed: int) -> list[int]:
    step = DialogueStep(hub, dataclasses.replace(config, seed=seed), user)
    return [step.advance(None)] + [step.advance(u) for u in person[:-1]]


def _offline(hub: SpeechDLM, person: list[int], config: GenerationConfig, user: int, seed: int) -> list[int]:
    """generate_batch with the person's channel as a forced prompt and the model's left free."""
    dictionary = hub.dicts[hub.channels[user]]
    prompt = torch.full((1, 2, len(person)), dictionary.unk(), dtype=torch.long)
    prompt[0, user] = torch.tensor([dictionary.index(str(u)) for u in person])
    config = dataclasses.replace(config, max_len_b=len(person), beam=1, units_only=True)
    ((hypo,),) = generate_batch(hub.model, prompt, config, dictionary, make_generator(seed, hub.device))
    return [int(hub.dicts[hub.channels[1 - user]][int(i)]) for i in hypo.tokens[1 - user]]


@pytest.mark.parametrize("name", CHECKPOINTS)
@pytest.mark.parametrize("user", [0, 1])
@pytest.mark.parametrize("window", [0, 12, 17])
@pytest.mark.parametrize("topk", [-1, 50])
def test_live_step_equals_offline_generation(reference, name, user, window, topk):
    """The frame-by-frame step with the person forced samples the units generate_batch samples
    (same seed, temperature, top-k, durations), through several context-window restarts (where the live step
    swaps in its shadow cache instead of re-feeding half the window)."""
    hub = _hub(reference, name)
    frames = 60 if window else hub.cfg.max_positions - 1
    person = _person(hub, frames)
    config = GenerationConfig(temperature=0.8, sampling_topk=topk, duration_temperature=0.5, context_window=window)
    live = _live(hub, person, config, user, seed=3)
    assert live == _offline(hub, person, config, user, seed=3)
    assert len(set(live)) > 3  # the model's channel is not stuck on one unit


def test_live_step_is_deterministic_per_seed(reference):
    hub = _hub(reference, CHECKPOINTS[0])
    person = _person(hub, 80, seed=1)
    config = GenerationConfig(temperature=1.5, context_window=20)
    first = _live(hub, person, config, 0, seed=7)
    assert first == _live(hub, person, config, 0, seed=7)
    assert first != _live(hub, person, config, 0, seed=8)


def test_hold_then_catch_up_feeds_every_frame(reference):
    """A held frame repeats the model's last unit without a forward pass; the next frame feeds
    both person units, so the positions fed stay one per frame."""
    hub = _hub(reference, CHECKPOINTS[0])
    person = _person(hub, 10)
    step = DialogueStep(hub, GenerationConfig(context_window=64, seed=0), 0)
    units = [step.advance(None), step.advance(person[0])]
    length = step.cache.length
    units.append(step.hold())
    assert units[-1] == units[-2] and step.cache.length == length
    step.feed(person[1])
    units.append(step.advance(person[2]))
    assert step.cache.length == length + 2 and step.frame == 4


def test_beam_search_and_bad_channel_are_refused(reference):
    hub = _hub(reference, CHECKPOINTS[0])
    with pytest.raises(DgslmError, match="beam search"):
        DialogueStep(hub, GenerationConfig(sampling=False), 0)
    with pytest.raises(DgslmError, match="user channel"):
        DialogueStep(hub, GenerationConfig(), 2)
