"""Training-state files: RNG states survive a round trip whatever device the rest is loaded on."""

from __future__ import annotations

import random

import numpy as np
import torch

from dgslm.training.checkpointing import load_state, rng_state, save_state, set_rng_state


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_rng_states_stay_on_the_cpu_when_the_rest_is_mapped(tmp_path):
    path = tmp_path / "state.pt"
    save_state(path, {"weights": torch.ones(3), "extra": [{"rng": rng_state()}]})
    expected = draws()
    # "meta" stands in for a GPU here: any non-CPU map_location used to move the RNG states too
    state = load_state(path, map_location="meta")
    assert state["weights"].device.type == "meta"
    rng = state["extra"][0]["rng"]
    assert rng["torch"].device.type == "cpu"
    set_rng_state(rng)
    assert draws() == expected
