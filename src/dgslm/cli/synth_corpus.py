"""``dgslm synth-corpus``: a synthetic two-speaker telephone conversation corpus."""

from __future__ import annotations

import argparse
import os

from dgslm.corpus.voices import ENGINES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", required=True, help="output folder (wav/, timing/, manifest.tsv, train/valid/test.tsv)"
    )
    parser.add_argument("--hours", type=float, required=True, help="total hours of dialogue to synthesise")
    parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same corpus bytes")
    parser.add_argument("--min-dialogue-seconds", type=float, default=30.0, help="shortest dialogue length")
    parser.add_argument("--max-dialogue-seconds", type=float, default=90.0, help="longest dialogue length")
    parser.add_argument(
        "--engines",
        nargs="+",
        choices=ENGINES,
        default=["espeak-ng"],
        help="speech synthesisers whose voices are used (flite: slower, more natural)",
    )
    parser.add_argument("--valid-fraction", type=float, default=0.05, help="share of dialogues in valid.tsv")
    parser.add_argument("--test-fraction", type=float, default=0.05, help="share of dialogues in test.tsv")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel synthesis processes")


def run(args: argparse.Namespace) -> int:
    from dgslm.corpus.synth import CorpusConfig, synth_corpus

    cfg = CorpusConfig(
        hours=args.hours,
        seed=args.seed,
        min_dialogue_seconds=args.min_dialogue_seconds,
        max_dialogue_seconds=args.max_dialogue_seconds,
        engines=tuple(args.engines),
        valid_fraction=args.valid_fraction,
        test_fraction=args.test_fraction,
    )
    synth_corpus(args.out, cfg, workers=args.workers)
    return 0
