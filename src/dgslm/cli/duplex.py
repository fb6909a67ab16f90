"""``dgslm duplex``: play an audio file into the live engine, as a person talking to the model.

    dgslm duplex USER.wav -o SESSION.wav [--user-channel 0|1] [--json] [--realtime] [--save-units F]

The file (mono, or one channel of a stereo file chosen with ``--input-channel``; any sample
rate, resampled to 16 kHz; a last partial frame is padded with silence) is cut into 20 ms
frames and given to :class:`dgslm.live.DuplexSession` one by one. SESSION.wav is the session as
the person heard it: their audio on ``--user-channel``, the model's voice on the other, where
the person hears it (each frame returned by the engine plays during the next frame, so the
model is heard ``algorithmic_latency_ms`` after the offline alignment). ``--realtime`` paces
the frames to the clock and lets the engine skip frames when it falls behind (the output then
depends on the machine's speed); without it the run is as fast as possible and deterministic
for a ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from dgslm.cli.options import add_live_arguments, live_paths, live_session

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user_audio", help="the person's audio: a mono file, or a stereo one with --input-channel")
    parser.add_argument("-o", "--output", required=True, type=Path, help="stereo session wav to write")
    parser.add_argument("--input-channel", type=int, choices=(1, 2), help="the person's channel of a stereo file")
    parser.add_argument("--json", action="store_true", help="print the session's statistics as JSON on stdout")
    parser.add_argument("--realtime", action="store_true", help="pace the frames to the clock, skip when behind")
    parser.add_argument("--save-units", type=Path, help="write both channels' units (as the model saw them) here")
    add_live_arguments(parser)


def person_audio(path: str, input_channel: int | None) -> np.ndarray:
    """The person's 16 kHz mono audio from ``path`` (one-line errors on what cannot be used)."""
    from dgslm.audio import load_audio
    from dgslm.errors import DgslmError

    wave, _ = load_audio(path)  # resampled to 16 kHz; empty or unreadable files are errors
    channels = wave.shape[1]
    if channels > 2:
        raise DgslmError(f"the file has {channels} channels; give a mono file or a stereo one", path)
    if channels == 2 and input_channel is None:
        raise DgslmError("stereo file: choose the person's channel with --input-channel 1 or 2", path)
    if channels == 1 and input_channel == 2:
        raise DgslmError("--input-channel 2 but the file is mono", path)
    return wave[:, (input_channel or 1) - 1]


def run(args: argparse.Namespace) -> int:
    paths = live_paths(args)  # before torch is imported
    audio = person_audio(args.user_audio, args.input_channel)

    from dgslm.audio import write_wav
    from dgslm.units.codes import write_code_file

    session = live_session(args, paths, catch_up=args.realtime)
    frame = session.frame_samples
    frames = -(-len(audio) // frame)
    person = np.zeros(frames * frame, dtype=np.float32)
    person[: len(audio)] = audio
    model = np.zeros_like(person)
    start = time.perf_counter()
    for k in range(frames):
        if args.realtime:  # frame k is complete at (k + 1) * 20 ms
            time.sleep(max(0.0, start + (k + 1) * frame / session.sample_rate - time.perf_counter()))
        out = session.step(person[k * frame : (k + 1) * frame])
        if k + 1 < frames:  # heard during the next frame
            model[(k + 1) * frame : (k + 2) * frame] = out
    stats = session.stats()
    stereo = np.zeros((len(person), 2), dtype=np.float32)
    stereo[:, args.user_channel], stereo[:, 1 - args.user_channel] = person, model
    write_wav(args.output, stereo, session.sample_rate)
    logger.info("wrote %s (%.2f s): %s", args.output, len(person) / session.sample_rate, stats)
    if stats["late_frames"]:
        logger.warning("%d of %d frames took longer than 20 ms (p95 %.1f ms): this machine falls behind real time",
                       stats["late_frames"], stats["frames"], stats["compute_ms_p95"])  # fmt: skip
    if args.save_units is not None:
        units = session.unit_history()
        write_code_file(args.save_units, [{"audio": args.output.stem, **units}])
        logger.info("wrote the units to %s", args.save_units)
    if args.json:
        print(json.dumps(stats))
    return 0
