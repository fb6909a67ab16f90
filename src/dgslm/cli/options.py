"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse


def split_names(text: str) -> tuple[str, ...]:
    """Comma-separated names, e.g. ``"unitA, unitB"`` -> ``("unitA", "unitB")``; blanks are dropped."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def add_sampling_arguments(group: argparse._ArgumentGroup) -> None:
    """The search flags of the original ``sample_speech_dlm.py``, with its names and defaults."""
    group.add_argument("--beam-search", action="store_true", help="joint beam search instead of sampling")
    group.add_argument(
        "--beam-size", type=int, default=5, help="beam size; with sampling, samples drawn per output (the best is kept)"
    )
    group.add_argument("--sampling-topk", type=int, default=-1, help="sample among the k most likely units (-1: off)")
    group.add_argument(
        "--sampling-topp", type=float, default=-1.0, help="sample among the smallest set of mass >= p (-1: off)"
    )
    group.add_argument("--temperature", type=float, default=1.0, help="temperature of the unit logits")
    group.add_argument(
        "--dur-temperature", type=float, default=1.0, help="durations are divided by it (> 1: faster speech)"
    )
    group.add_argument("--seed", type=int, default=123, help="seed of the sampling (default 123)")
    group.add_argument(
        "--context-window", type=int, default=0,
        help="attend to at most N positions, restarting from the last N/2 when full, so outputs may outgrow "
             "the model's positions; use the training --tokens-per-sample (ours; default 0: off, the original)",
    )  # fmt: skip
