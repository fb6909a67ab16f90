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


def add_model_arguments(group: argparse._ArgumentGroup) -> None:
    """The model path flags of the audio commands (see :mod:`dgslm.pipeline.resolve`)."""
    group.add_argument("--hubert", help="HuBERT checkpoint (.pt) or converted folder")
    group.add_argument("--km", help="k-means file (original pickle or .safetensors)")
    group.add_argument("--layer", type=int, help="HuBERT layer of the units (default 12, or the converted folder's)")
    group.add_argument("--speech-dlm", help="SpeechDLM checkpoint (.pt) or converted folder")
    group.add_argument("--speech-dlm-data", help="folder of dict.unitA.txt/dict.unitB.txt (default: the checkpoint's)")
    group.add_argument("--vocoder", help="unit HiFi-GAN checkpoint or converted folder")
    group.add_argument("--vocoder-cfg", help="vocoder config.json (default: the one beside the vocoder)")
    group.add_argument(
        "--no-demo", action="store_true", help="never fall back to the bundled demo models (also: DGSLM_NO_DEMO=1)"
    )


def model_path_flags(args: argparse.Namespace) -> dict:
    """The flags of :func:`add_model_arguments` as keyword arguments of ``resolve_model_paths``."""
    names = ("hubert", "km", "layer", "speech_dlm", "speech_dlm_data", "vocoder", "vocoder_cfg", "no_demo")
    return {name: getattr(args, name) for name in names}
