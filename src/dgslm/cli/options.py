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


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The vocoder speakers, the model files (found by :func:`model_paths`) and ``--device``."""
    voc = parser.add_argument_group("vocoder")
    voc.add_argument("--channel1-spk", type=int, default=0, help="speaker id of channel 1 (default 0)")
    voc.add_argument("--channel2-spk", type=int, default=4, help="speaker id of channel 2 (default 4)")
    models = parser.add_argument_group("model files (default: the cache, then the bundled demo)")
    models.add_argument("--hubert", help="HuBERT checkpoint (.pt) or converted folder")
    models.add_argument("--km", help="k-means file (original pickle or .safetensors)")
    models.add_argument("--layer", type=int, help="HuBERT layer of the units (default 12, or the converted folder's)")
    models.add_argument("--speech-dlm", help="SpeechDLM checkpoint (.pt) or converted folder")
    models.add_argument("--speech-dlm-data", help="folder of dict.unitA.txt/dict.unitB.txt (default: the checkpoint's)")
    models.add_argument("--vocoder", help="unit HiFi-GAN checkpoint or converted folder")
    models.add_argument("--vocoder-cfg", help="vocoder config.json (default: the one beside the vocoder)")
    models.add_argument(
        "--no-demo", action="store_true", help="never fall back to the bundled demo models (also: DGSLM_NO_DEMO=1)"
    )
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")


def model_paths(args: argparse.Namespace, models: tuple[str, ...] = ("hubert", "speech_dlm", "hifigan")):
    """The model files of the flags of :func:`add_model_arguments` (flags > cache > bundled demo),
    checked by name only, so a missing model is reported before anything heavy is loaded."""
    from dgslm.pipeline.resolve import resolve_model_paths

    return resolve_model_paths(args.hubert, args.km, args.layer, args.speech_dlm, args.speech_dlm_data,
                               args.vocoder, args.vocoder_cfg, models=models, no_demo=args.no_demo)  # fmt: skip
