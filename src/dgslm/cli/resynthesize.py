"""``dgslm resynthesize``: encode a stereo recording to units and vocode them back, nothing
generated: the quickest way to hear what the units keep.

    dgslm resynthesize IN.wav -o OUT.wav [--save-units UNITS.txt]

The model files are found as ``dgslm generate`` finds them (flags > cache > bundled demo, see
:func:`dgslm.models.resolve.resolve_model_paths`), before anything heavy is imported. The output
has 320 samples (the vocoder's hop) per unit frame and channel, at 16 kHz.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dgslm.cli.options import (
    add_stereo_input_arguments,
    add_synthesis_arguments,
    model_path_flags,
    read_stereo,
    save_units,
)

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="stereo recording, one speaker per channel (any format and sample rate)")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output stereo wav (16 kHz)")
    add_stereo_input_arguments(parser)  # --allow-mono, --save-units
    add_synthesis_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from dgslm.errors import DgslmError
    from dgslm.models.resolve import resolve_model_paths

    if not Path(args.input).is_file():
        raise DgslmError("no such file", args.input)
    paths = resolve_model_paths(**model_path_flags(args))

    from dgslm.audio import write_wav
    from dgslm.pipeline.dialogue import DialoguePipeline

    wave = read_stereo(args.input, None, args.allow_mono)
    pipe = DialoguePipeline.from_pretrained(paths, args.device, (args.channel1_spk, args.channel2_spk))
    result = pipe.resynthesize(wave, path=args.input)
    write_wav(args.output, result.audio, pipe.sample_rate)
    logger.info("wrote %s (%d frames, %.2f s)", args.output, result.prompt_frames, len(result.audio) / pipe.sample_rate)
    save_units(args.save_units, [(args.output, result.units)])
    return 0
