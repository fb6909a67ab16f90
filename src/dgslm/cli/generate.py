"""``dgslm generate``: continue a stereo spoken dialogue, audio in, audio out.

    dgslm generate PROMPT.wav -o OUT.wav [--prompt-seconds 5] [--seconds 10] [--num-samples 3]
    dgslm generate --units CODES.txt -o OUT.wav

Output names: one output -> OUT.wav; several -> OUT_<sample>.wav for an audio prompt,
OUT_<line>.wav / OUT_<line>_<sample>.wav for a code file (0-based). The model files are found
by :func:`dgslm.models.resolve.resolve_model_paths` (flags > cache > bundled demo, unless
``--no-demo`` or ``DGSLM_NO_DEMO=1``) before anything heavy is imported, so a missing model is
reported at once. ``--units`` needs no HuBERT + k-means: only the SpeechDLM and the vocoder.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dgslm.cli.options import (
    add_dtype_argument,
    add_sampling_arguments,
    add_stereo_input_arguments,
    add_synthesis_arguments,
    generation_config,
    model_path_flags,
    read_stereo,
    save_units,
)
from dgslm.pipeline.defaults import DIALOGUE_DEFAULTS

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", nargs="?", help="stereo audio prompt (any format and sample rate)")
    parser.add_argument("--units", help="start from a code file instead: each line's units are continued")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output wav (see the naming rule above)")
    parser.add_argument(
        "--prompt-seconds", type=float, help="use only the first S seconds of the prompt (default: all)"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of continuation (default 10)")
    parser.add_argument("--continuation-only", action="store_true", help="write the continuation without the prompt")
    parser.add_argument("--num-samples", type=int, default=1, help="continuations per prompt (default 1)")
    add_stereo_input_arguments(parser)  # --allow-mono, --save-units (prompt + continuation)
    sampling = parser.add_argument_group(
        "sampling (the names of sample_speech_dlm.py; defaults: dgslm.pipeline.defaults)"
    )
    add_sampling_arguments(sampling, DIALOGUE_DEFAULTS)
    add_synthesis_arguments(parser)
    add_dtype_argument(parser)


def output_paths(output: Path, lines: int, samples: int, per_line: bool) -> list[list[Path]]:
    """``[line][sample]`` output paths (the naming rule of the module docstring)."""

    def name(i: int, k: int) -> Path:
        parts = ([str(i)] if per_line and lines > 1 else []) + ([str(k)] if samples > 1 else [])
        return output.with_name("_".join([output.stem, *parts]) + output.suffix) if parts else output

    return [[name(i, k) for k in range(samples)] for i in range(lines)]


def units_prompt(
    record: dict[str, str], channels: tuple[str, ...], prompt_seconds: float | None, path: str, line: int
) -> dict[str, str]:
    """The prompt of one code-file line: its first ``prompt_seconds`` (50 units a second) per channel."""
    from dgslm.audio import FRAME_RATE
    from dgslm.errors import DgslmError

    if missing := [c for c in channels if c not in record]:
        raise DgslmError(f"no channel {missing[0]!r} in this line", path, line)
    keep = None if prompt_seconds is None else round(prompt_seconds * FRAME_RATE)
    units = {c: record[c].split()[:keep] for c in channels}
    lengths = sorted({len(u) for u in units.values()})
    if len(lengths) > 1 or not lengths[0]:
        raise DgslmError(f"the channels need the same number of units, at least one; got {lengths}", path, line)
    return {c: " ".join(u) for c, u in units.items()}


def run(args: argparse.Namespace) -> int:
    from dgslm.errors import DgslmError
    from dgslm.models.resolve import resolve_model_paths

    if (args.prompt is None) == (args.units is None):
        raise DgslmError("give either a prompt audio file or --units CODES")
    if args.num_samples < 1:
        raise DgslmError(f"--num-samples must be >= 1, got {args.num_samples}")
    if not Path(args.prompt if args.prompt is not None else args.units).is_file():
        raise DgslmError("no such file", args.prompt if args.prompt is not None else args.units)
    needed = ("speech_dlm", "hifigan") if args.units is not None else ("hubert", "speech_dlm", "hifigan")
    paths = resolve_model_paths(**model_path_flags(args), models=needed)

    config = generation_config(args)  # imports torch: after the model files are found
    from dgslm.audio import FRAME_RATE, write_wav
    from dgslm.pipeline.dialogue import DialoguePipeline
    from dgslm.units.codes import iter_code_file

    if args.prompt is not None:
        wave = read_stereo(args.prompt, args.prompt_seconds, args.allow_mono)
        records = None
    else:
        records = list(iter_code_file(args.units))  # (line number, record)
        if not records:
            raise DgslmError("no lines in the code file", args.units)
    pipe = DialoguePipeline.from_pretrained(paths, args.device, (args.channel1_spk, args.channel2_spk), args.dtype)
    channels = pipe.lm.channels
    if records is None:
        prompts = [pipe.encode_ids(wave, path=args.prompt)]
        where = [args.prompt]
    else:  # strict as `dgslm sample`: only <unk> leaves a unit free
        prompts = [
            pipe.lm.encode_prompt(units_prompt(record, channels, args.prompt_seconds, args.units, line),
                                  strict=True, path=args.units, line=line)
            for line, record in records
        ]  # fmt: skip
        where = [f"{args.units}:{line}" for line, _ in records]
    frames = round(args.seconds * FRAME_RATE)
    configs = [  # every prompt is checked before any is generated
        pipe.continuation_config(prompt.shape[1], frames, args.num_samples, config, at)
        for prompt, at in zip(prompts, where)
    ]
    names = output_paths(args.output, len(prompts), args.num_samples, records is not None)
    results = [
        pipe.continue_from_ids(prompt, prompt_config, args.num_samples, args.continuation_only, progress=True)
        for prompt, prompt_config in zip(prompts, configs)
    ]  # everything is generated before anything is written
    saved = []
    for outputs, files in zip(results, names, strict=True):
        for result, path in zip(outputs, files, strict=True):
            write_wav(path, result.audio, pipe.sample_rate)
            logger.info("wrote %s (%.2f s)", path, len(result.audio) / pipe.sample_rate)
            saved.append((path, result.units))
    save_units(args.save_units, saved)
    return 0
