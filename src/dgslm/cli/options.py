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


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    """Task, criterion, batching and device flags shared by ``train`` and ``validate``."""
    g = parser.add_argument_group("task (speech_dlm_task) and criterion (speech_dlm_criterion)")
    g.add_argument("--task", default="speech_dlm_task", choices=["speech_dlm_task"])
    g.add_argument("--criterion", default="speech_dlm_criterion", choices=["speech_dlm_criterion"])
    g.add_argument("--fairseq-compat", action="store_true",
                   help="reproduce the original's numbers exactly, including its delayed-duration "
                        "leak across blocks and its mis-normalised global metrics")  # fmt: skip
    g.add_argument("--max-tokens", type=int, default=None, help="tokens per batch")
    g.add_argument(
        "--batch-size", "--max-sentences", dest="batch_size", type=int, default=None, help="blocks per batch"
    )
    g.add_argument("--skip-invalid-size-inputs-valid-test", action="store_true")
    g.add_argument("--required-batch-size-multiple", type=int, default=8)
    g.add_argument("--num-workers", type=int, default=1, help="data loader worker processes")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    g.add_argument("--fp16", action="store_true", help="float16 autocast with dynamic loss scaling")
    g.add_argument("--fp16-init-scale", type=float, default=128.0, help="initial fp16 loss scale (fairseq's default)")
    g.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
