"""The ``dgslm`` program: dispatches to one module per subcommand.

Each subcommand module ``dgslm.cli.<module>`` defines

- ``add_arguments(parser: argparse.ArgumentParser) -> None``
- ``run(args: argparse.Namespace) -> int | None``

Modules are imported only when their subcommand runs, so ``dgslm --help`` and error
messages come back at once, without importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys

from dgslm import __version__

# subcommand -> (module under dgslm.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "manifest": ("manifest", "list a folder's audio files in a wav2vec-style manifest (train.tsv, valid.tsv)"),
    "encode": ("encode", "stereo recordings to unit code files (HuBERT or log-mel/MFCC + k-means)"),
    "kmeans": ("kmeans", "learn a k-means unit quantiser on features of your audio"),
    "create-code-file": ("create_code_file", "merge two per-channel unit files into one code file"),
    "preprocess": ("preprocess", "binarise per-channel unit files into a fairseq-format dataset"),
    "train": ("train", "train a SpeechDLM (the original fairseq-train flags)"),
    "validate": ("validate", "validate a SpeechDLM checkpoint on a binarised dataset"),
    "sample": ("sample", "continue unit prompts with a SpeechDLM (sampling or beam search)"),
    "vocode": ("vocode", "unit code files to stereo wavs with a unit HiFi-GAN"),
    "train-vocoder": ("train_vocoder", "train a unit HiFi-GAN vocoder on your audio and units"),
    "generate": ("generate", "continue a stereo spoken dialogue: audio in, audio out"),
    "resynthesize": ("resynthesize", "encode a stereo recording to units and vocode them back (what the units keep)"),
    "duplex": ("duplex", "talk to the model: play a person's audio into the live engine, 20 ms at a time"),
    "evaluate": ("evaluate", "turn-taking statistics of stereo dialogues (IPUs, pauses, gaps, overlaps)"),
    "download": ("download", "fetch the released dGSLM model files into the cache"),
    "convert": ("convert", "convert original checkpoints into dgslm safetensors folders"),
    "synth-corpus": ("synth_corpus", "make a synthetic two-speaker conversation corpus"),
    "serve": ("serve", "talk to the model in a web browser: the page and its WebSocket server"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dgslm", description="Generative Spoken Dialogue Language Modeling.")
    parser.add_argument("--version", action="version", version=f"dgslm {__version__}")
    parser.add_argument("--log-level", default="INFO", help="logging level (DEBUG, INFO, WARNING, ...)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def check_finite(args: argparse.Namespace) -> None:
    """No number flag may be nan or infinite (``--seconds nan`` would reach the models)."""
    from dgslm.errors import DgslmError

    for name, value in vars(args).items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise DgslmError(f"--{name.replace('_', '-')} must be a finite number, not {value!r}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = build_parser()
    top_args, rest = top.parse_known_args(argv)
    if top_args.command is None:
        top.print_help()
        return 2
    module_name, help_text = COMMANDS[top_args.command]
    logging.basicConfig(
        level=getattr(logging, str(top_args.log_level).upper(), logging.INFO),
        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s",
        stream=sys.stderr,
    )
    from dgslm.errors import DgslmError

    try:
        module = importlib.import_module(f"dgslm.cli.{module_name}")
        parser = argparse.ArgumentParser(prog=f"dgslm {top_args.command}", description=help_text)
        module.add_arguments(parser)
        # everything after the subcommand name belongs to the subcommand
        args = parser.parse_args(argv[argv.index(top_args.command) + 1 :])
        check_finite(args)
        return int(module.run(args) or 0)
    except DgslmError as err:
        print(f"dgslm {top_args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"dgslm {top_args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
