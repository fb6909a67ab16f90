"""Argument helpers shared by the subcommands.

The generation flags: :func:`add_sampling_arguments` (``dgslm sample`` and ``dgslm generate``)
and :func:`add_output_arguments` (``dgslm sample`` only: ``dgslm generate`` derives the output
length from ``--seconds``) define one flag per :class:`~dgslm.lm.generate.GenerationConfig`
field, with the original script's names (:data:`ORIGINAL_DESTS`), and
:func:`generation_config` builds the config from the parsed flags. A new generation option is
one field in ``GenerationConfig`` and one flag here named after it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports torch only once a command runs
    from dgslm.lm.generate import GenerationConfig

# GenerationConfig fields whose flag has another name in the original (--beam-search is "not
# sampling"); every other field's flag is its name: --max-len-b -> max_len_b.
logger = logging.getLogger(__name__)

ORIGINAL_DESTS = {"sampling": "beam_search", "beam": "beam_size", "duration_temperature": "dur_temperature"}


def split_names(text: str) -> tuple[str, ...]:
    """Comma-separated names, e.g. ``"unitA, unitB"`` -> ``("unitA", "unitB")``; blanks are dropped."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def add_sampling_arguments(group: argparse._ArgumentGroup, defaults: Mapping[str, Any] | None = None) -> None:
    """The search flags of the original ``sample_speech_dlm.py``, with its names and defaults, but
    for the GenerationConfig fields in ``defaults`` (a context window of None: the model's own
    training block length)."""
    own = {ORIGINAL_DESTS.get(field, field): value for field, value in (defaults or {}).items()}
    value = {"beam_size": 5, "temperature": 1.0, "context_window": 0, **own}
    window = "the model's training block length" if value["context_window"] is None else value["context_window"]
    group.add_argument("--beam-search", action="store_true", help="joint beam search instead of sampling")
    group.add_argument("--beam-size", type=int, default=value["beam_size"],
                       help="beam size; with sampling, samples drawn per output (the best is kept; default %(default)s)")  # fmt: skip
    group.add_argument("--sampling-topk", type=int, default=-1, help="sample among the k most likely units (-1: off)")
    group.add_argument(
        "--sampling-topp", type=float, default=-1.0, help="sample among the smallest set of mass >= p (-1: off)"
    )
    group.add_argument("--temperature", type=float, default=value["temperature"],
                       help="temperature of the unit logits (default %(default)s)")  # fmt: skip
    group.add_argument(
        "--dur-temperature", type=float, default=1.0, help="durations are divided by it (> 1: faster speech)"
    )
    group.add_argument(
        "--lenpen", type=float, default=1.0, help="scores are divided by (length + 1) ** lenpen (fairseq's; default 1)"
    )
    group.add_argument(
        "--unkpen", type=float, default=0.0, help="subtracted from the log-prob of <unk> (fairseq's; default 0)"
    )
    group.add_argument(
        "--no-repeat-ngram-size", type=int, default=0,
        help="never repeat an n-gram of this size within a channel (fairseq's; forced units exempt; 0: off)",
    )  # fmt: skip
    group.add_argument(
        "--unnormalized", action="store_true", help="do not divide scores by (length + 1) ** lenpen (fairseq's)"
    )
    group.add_argument("--seed", type=int, default=123, help="seed of the sampling (default 123)")
    group.add_argument(
        "--context-window", type=int, default=value["context_window"],
        help="attend to at most N positions, restarting from the last N/2 when full, so outputs may outgrow "
             f"the model's positions; the training --tokens-per-sample suits (ours; default: {window}; 0: off, "
             "the original)".replace("%", "%%"),
    )  # fmt: skip


def add_dtype_argument(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """``--dtype``: the SpeechDLM's weights for decoding (a loading option, not a GenerationConfig field)."""
    group.add_argument(
        "--dtype", default="float32", choices=("float32", "bfloat16", "int8"),
        help="SpeechDLM weights for decoding: float32 (default, as trained), bfloat16, or int8 (weight-only "
             "quantised linear layers, bfloat16 activations); smaller is faster (ours, see docs/speed-dtype.md)",
    )  # fmt: skip


def add_model_arguments(group: argparse._ArgumentGroup) -> None:
    """The model path flags of the audio commands (see :mod:`dgslm.models.resolve`)."""
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


def add_output_arguments(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """The output length flags of ``sample_speech_dlm.py``, and ours to keep only units."""
    group.add_argument("--max-len-a", type=int, default=0, help="output length = a * (prompt + 1) + b")
    group.add_argument(
        "--max-len-b", type=int, default=500, help="output units per channel, prompt included (500 = 10 s)"
    )
    group.add_argument("--min-len", type=int, default=1, help="minimum output length")
    group.add_argument(
        "--match-source-len", action="store_true",
        help="output exactly as many units as the longest prompt (fairseq's; --max-len-a/b ignored)",
    )  # fmt: skip
    group.add_argument(
        "--units-only", action="store_true",
        help="never generate a symbol that is not a unit (<s>, <unk>), so that every channel has --max-len-b "
             "units (ours; the original may drop one)",
    )  # fmt: skip


def generation_config(args: argparse.Namespace, **fixed: Any) -> GenerationConfig:
    """The GenerationConfig of the parsed generation flags (those the command has), with the
    fields in ``fixed`` set by the command itself; validated once, here (DgslmError)."""
    from dgslm.lm.generate import GenerationConfig

    dests = {f.name: ORIGINAL_DESTS.get(f.name, f.name) for f in dataclasses.fields(GenerationConfig)}
    values = {field: getattr(args, dest) for field, dest in dests.items() if hasattr(args, dest)}
    if "sampling" in values:
        values["sampling"] = not values["sampling"]  # --beam-search
    return GenerationConfig(**{**values, **fixed})


def add_synthesis_arguments(parser: argparse.ArgumentParser) -> None:
    """The vocoder's speakers, the model files and ``--device`` of the audio commands."""
    voc = parser.add_argument_group("vocoder")
    voc.add_argument("--channel1-spk", type=int, default=0, help="speaker id of channel 1 (default 0)")
    voc.add_argument("--channel2-spk", type=int, default=4, help="speaker id of channel 2 (default 4)")
    add_model_arguments(parser.add_argument_group("model files (default: the cache, then the bundled demo)"))
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")


def add_stereo_input_arguments(parser: argparse.ArgumentParser) -> None:
    """The stereo recording's flags of ``dgslm generate`` and ``dgslm resynthesize``."""
    parser.add_argument(
        "--allow-mono", action="store_true", help="accept a mono recording (the same audio on both channels)"
    )
    parser.add_argument("--save-units", type=Path, help="also write the units to this code file")


def read_stereo(path: str, prompt_seconds: float | None, allow_mono: bool):
    """``path`` as stereo ``[samples, 2]`` float32 at 16 kHz (its first ``prompt_seconds``);
    one-line DgslmErrors for an unreadable, empty or mono file (see ``stereo_prompt``)."""
    from dgslm.audio import load_audio
    from dgslm.pipeline.dialogue import stereo_prompt

    wave, rate = load_audio(path, None)
    return stereo_prompt(wave, rate, prompt_seconds, allow_mono, path)


def save_units(path: Path | None, outputs: list[tuple[Path, dict[str, str]]]) -> None:
    """``--save-units``: each ``(wav, units)`` output as a code file line, ``audio`` being the wav's name."""
    if path is None:
        return
    from dgslm.units.codes import write_code_file

    write_code_file(path, [{"audio": wav.stem, **units} for wav, units in outputs])
    logger.info("wrote the units to %s", path)


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of a live session (``dgslm duplex``, ``dgslm serve``): the person's channel, the
    engine's look-aheads, sampling, vocoder speakers, model files, device and threads."""
    parser.add_argument("--user-channel", type=int, choices=(0, 1), default=0,
                        help="the person's channel in the dialogue and the session wav (default 0: unitA, left)")  # fmt: skip
    engine = parser.add_argument_group("engine")
    engine.add_argument("--unit-lookahead", type=int, help="frames the person's units wait for (default: 2)")
    engine.add_argument("--vocoder-lookahead", type=int, default=None,
                        help="units ahead of the vocoded frame (default 2; 21 or more: an exact stream)")  # fmt: skip
    engine.add_argument("--vocoder-context", type=int, default=None,
                        help="units behind the vocoded frame in the vocoder's window (default 4)")  # fmt: skip
    add_dtype_argument(engine)
    add_sampling_arguments(parser.add_argument_group("sampling (one sample: --beam-size is not used live)"))
    add_synthesis_arguments(parser)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: per-frame work is small, more threads mostly wait)")  # fmt: skip


def live_paths(args: argparse.Namespace):
    """The model files of a live session's flags, checked (by name) before anything heavy loads."""
    from dgslm.errors import DgslmError
    from dgslm.models.resolve import resolve_model_paths

    if args.beam_search:
        raise DgslmError("--beam-search cannot run live (it revises past frames); the live engine samples")
    if args.threads < 1:
        raise DgslmError(f"--threads must be >= 1, got {args.threads}")
    return resolve_model_paths(**model_path_flags(args))


def live_session(args: argparse.Namespace, paths, catch_up: bool):
    """The :class:`dgslm.live.DuplexSession` of the flags of :func:`add_live_arguments` on the
    models of ``paths`` (torch set to ``--threads``)."""
    import torch

    from dgslm.live.session import DuplexSession

    torch.set_num_threads(args.threads)
    config = generation_config(args)  # the sampling flags and --seed
    engine = {name: value for name in ("unit_lookahead", "vocoder_lookahead", "vocoder_context")
              if (value := getattr(args, name)) is not None}  # fmt: skip
    return DuplexSession.from_pretrained(config, None, args.user_channel, args.device,
                                         (args.channel1_spk, args.channel2_spk), paths, args.dtype,
                                         catch_up=catch_up, **engine)  # fmt: skip


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
