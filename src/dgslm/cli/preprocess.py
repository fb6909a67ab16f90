"""``dgslm preprocess``: per-channel unit files to a binarised SpeechDLM dataset.

Does in one call what the original README does with two ``fairseq-preprocess --only-source``
runs and a rename: the dictionary is built from the first channel's train file (or read
from ``--srcdict``) and reused for every channel, and each channel gets
``{split}.{channel}.bin/.idx`` and ``dict.{channel}.txt`` in ``--destdir``, byte-identical to
fairseq's. Channels must agree line by line (same line count, same units per line).

The original two-call form works too: ``--source-lang unitA --only-source`` binarises that one
channel into the names fairseq gives it, ``{split}.unitA-None.unitA.bin/.idx`` (plus
``dict.unitA.txt``), so that the original README's ``mv`` loop renames them as it expects.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dgslm.errors import DgslmError
from dgslm.units.unit_files import check_parallel


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--channels", default="unitA,unitB", help="comma-separated channel names (file suffixes)")
    parser.add_argument("--trainpref", help="train file prefix: reads {trainpref}.{channel}")
    parser.add_argument("--validpref", help="valid file prefix(es), comma-separated")
    parser.add_argument("--testpref", help="test file prefix(es), comma-separated")
    parser.add_argument("--destdir", default="data-bin", help="output folder")
    parser.add_argument("--srcdict", help="reuse this dictionary instead of building one")
    parser.add_argument("--thresholdsrc", type=int, default=0, help="drop units seen fewer times than this")
    parser.add_argument("--nwordssrc", type=int, default=-1, help="keep this many dictionary entries")
    parser.add_argument("--padding-factor", type=int, default=8, help="pad the dictionary to a multiple of this")
    parser.add_argument("--workers", type=int, default=1, help="encoding processes")
    parser.add_argument(
        "--source-lang",
        help="fairseq's one-channel form: binarise this channel only, into {split}.X-None.X.{bin,idx} "
        "(needs --only-source; replaces --channels)",
    )
    parser.add_argument("--only-source", action="store_true", help="with --source-lang: no target side (as fairseq)")


def channels_and_names(args: argparse.Namespace) -> tuple[list[str], str]:
    """The channels to binarise and the output name pattern (``{split}``, ``{channel}``)."""
    if args.source_lang is None:
        channels = [c for c in args.channels.split(",") if c]
        if not channels:
            raise DgslmError("--channels is empty")
        return channels, "{split}.{channel}"
    if not args.only_source:
        raise DgslmError("--source-lang needs --only-source: SpeechDLM data has no target side")
    return [args.source_lang], "{split}.{channel}-None.{channel}"


def splits(args: argparse.Namespace) -> list[tuple[str, str]]:
    """``(split name, file prefix)`` pairs; extra comma-separated prefixes are valid1, test1, ..."""
    result = [("train", args.trainpref)] if args.trainpref else []
    for name, prefixes in (("valid", args.validpref), ("test", args.testpref)):
        for k, prefix in enumerate(prefixes.split(",") if prefixes else []):
            result.append((name if k == 0 else f"{name}{k}", prefix))
    return result


def run(args: argparse.Namespace) -> int:
    from dgslm.units.binarize import binarize_file, make_pool  # imports torch: not needed for --help
    from dgslm.units.dictionary import UNK, Dictionary

    channels, pattern = channels_and_names(args)
    todo = splits(args)
    if not todo:
        raise DgslmError("nothing to do: give --trainpref, --validpref or --testpref")
    for _, prefix in todo:
        check_parallel([f"{prefix}.{channel}" for channel in channels])
    if args.srcdict:
        dictionary = Dictionary.load(args.srcdict)
    elif args.trainpref:
        dictionary = Dictionary.build(
            [f"{args.trainpref}.{channels[0]}"], args.padding_factor, args.thresholdsrc, args.nwordssrc
        )
    else:
        raise DgslmError("give --trainpref to build the dictionary, or --srcdict")
    destdir = Path(args.destdir)
    pool = make_pool(dictionary, args.workers)
    try:
        for channel in channels:
            dictionary.save(destdir / f"dict.{channel}.txt")
            print(f"[{channel}] Dictionary: {len(dictionary)} types")
            for split, prefix in todo:
                text_path = f"{prefix}.{channel}"
                stats = binarize_file(
                    text_path, destdir / pattern.format(split=split, channel=channel), dictionary, pool
                )
                print(
                    f"[{channel}] {text_path}: {stats.sentences} sents, {stats.tokens} tokens, "
                    f"{stats.replaced_percent:.3}% replaced (by {UNK})"
                )
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    print(f"Wrote preprocessed data to {args.destdir}")
    return 0
