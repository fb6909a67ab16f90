"""``dgslm encode``: stereo recordings to unit code files (HuBERT or log-mel/MFCC + k-means).

Flag names follow the original ``quantize_with_kmeans.py`` where one existed (its
underscore spellings are accepted too)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dgslm.audio import AUDIO_EXTENSIONS, FRAME_RATE
from dgslm.cli.options import split_names
from dgslm.fileio import tagged_path

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", help="audio files, folders (searched recursively) or .tsv manifests")
    parser.add_argument(
        "--manifest-path", "--manifest_path", action="append", default=[], help="a wav2vec-style manifest (repeatable)"
    )
    parser.add_argument(
        "-o",
        "--output",
        "--out_quantized_file_path",
        dest="output",
        required=True,
        help="code file to write ({'audio': name, 'unitA': ..., 'unitB': ...} per line)",
    )
    parser.add_argument(
        "--hubert",
        "--acoustic_model_path",
        dest="hubert",
        help="HuBERT checkpoint (original fairseq .pt) or converted folder",
    )
    parser.add_argument(
        "--km",
        "--kmeans_model_path",
        dest="km",
        required=True,
        help="k-means file: ours (.safetensors/.npy) or the original joblib pickle",
    )
    parser.add_argument(
        "--feature-type", "--feature_type", dest="feature_type", default="hubert", choices=("hubert", "logmel", "mfcc")
    )
    parser.add_argument(
        "--layer",
        type=int,
        default=None,
        help="HuBERT layer (1-based) whose output is quantised (default: 12, or a converted folder's)",
    )
    parser.add_argument("--channels", default="unitA,unitB", help="code-file keys of channel 1 and 2")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--batch-size", type=int, default=2, help="channels per forward pass")
    parser.add_argument(
        "--autocast",
        default="none",
        choices=("none", "bf16", "fp16"),
        help="HuBERT in bf16/fp16 autocast (faster on GPUs; units may differ on near-ties)",
    )
    parser.add_argument(
        "--streaming",
        type=float,
        default=None,
        metavar="SECONDS",
        help="HuBERT in windows of this many seconds with --left-context (bounded memory; "
        "features differ slightly from the original's 100 s passes)",
    )
    parser.add_argument(
        "--left-context", type=float, default=1.0, metavar="SECONDS", help="context per --streaming window"
    )
    parser.add_argument(
        "--min-silence-frames",
        type=int,
        default=None,
        metavar="N",
        help="silence runs shorter than N frames inside speech take the unit before them "
        "(default: a unit folder's setting, else 0 = off)",
    )
    parser.add_argument(
        "--min-speech-frames",
        type=int,
        default=None,
        metavar="N",
        help="speech stretches shorter than N frames between silences become silence (default as above)",
    )
    parser.add_argument("--shard-id", type=int, default=0)
    parser.add_argument("--num-shards", type=int, default=1, help="with N > 1 the outputs get a .<id>-of-<N> suffix")
    parser.add_argument(
        "--extension", default=",".join(AUDIO_EXTENSIONS), help="audio extensions searched in folders (comma-separated)"
    )
    parser.add_argument(
        "--per-channel-dir",
        type=Path,
        default=None,
        help="also write <dir>/<output stem>.<channel> files ('name-channelK|units' lines) for `dgslm preprocess`",
    )
    parser.add_argument("--hide-fname", action="store_true", help="per-channel lines hold the units only")
    parser.add_argument(
        "--channel_id",
        "--channel-id",
        dest="channel_id",
        type=int,
        choices=(1, 2),
        default=None,
        help="the original quantiser's mode: encode this channel only and write its lines "
        "('name-channelK|units', or the units with --hide-fname) to --output",
    )
    parser.add_argument("--format", default="python", choices=("python", "jsonl"), help="code file line format")
    parser.add_argument(
        "--allow-mono", action="store_true", help="encode a mono file as if both channels were that signal"
    )
    parser.add_argument("--skip-bad", action="store_true", help="report unreadable/empty/mono files and go on")


def shard_output(path: Path, shard_id: int, num_shards: int) -> Path:
    """Shard K of N writes ``<stem>.K-of-N<suffix>`` (``<name>-K-of-N`` without a suffix, so
    that its ``--per-channel-dir`` files ``<stem>.<channel>`` differ from the other shards')."""
    return path if num_shards == 1 else tagged_path(path, f"{shard_id}-of-{num_shards}")


def pick_encode_device(device: str | None) -> str | None:
    """Under torchrun: join the process group and take this rank's device (``cuda:LOCAL_RANK``
    when there are GPUs); otherwise ``device`` as given."""
    from dgslm.training import distributed

    if not distributed.launched():
        return device
    return str(distributed.init(device, timeout=distributed.JOB_TIMEOUT))


def run(args: argparse.Namespace) -> int:
    import torch

    from dgslm.encoder.encode import EncodeOptions
    from dgslm.encoder.inputs import find_audio, shard
    from dgslm.encoder.ranks import encode_on_ranks
    from dgslm.encoder.unit_encoder import UnitEncoder
    from dgslm.errors import DgslmError
    from dgslm.training import distributed

    sources = list(args.inputs) + list(args.manifest_path)
    if not sources:
        raise DgslmError("no inputs: give audio files, folders or manifests")
    if args.num_shards < 1 or args.batch_size < 1:
        raise DgslmError("--num-shards and --batch-size must be >= 1")
    channels = split_names(args.channels)
    if len(channels) != 2 or len(set(channels)) != 2:
        raise DgslmError(f"--channels needs two distinct names, got {args.channels!r}")
    if args.channel_id is not None and args.per_channel_dir is not None:
        raise DgslmError("--channel_id writes one channel's lines to --output: it takes no --per-channel-dir")
    items = shard(find_audio(sources, args.extension.split(",")), args.shard_id, args.num_shards)
    output = shard_output(Path(args.output), args.shard_id, args.num_shards)
    try:
        autocast = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.autocast]
        streaming = (
            None
            if args.streaming is None
            else (max(1, round(args.streaming * FRAME_RATE)), max(0, round(args.left_context * FRAME_RATE)))
        )
        device = pick_encode_device(args.device)
        encoder = UnitEncoder.from_pretrained(args.hubert, args.km, args.layer, device, args.feature_type, autocast,
                                              streaming, args.min_silence_frames, args.min_speech_frames)  # fmt: skip
    except ValueError as err:
        raise DgslmError(str(err)) from None
    opts = EncodeOptions(
        channels=channels,
        allow_mono=args.allow_mono,
        skip_bad=args.skip_bad,
        batch_size=args.batch_size,
        per_channel_dir=args.per_channel_dir,
        hide_fname=args.hide_fname,
        fmt=args.format,
        channel_id=args.channel_id,
    )
    try:
        summary = encode_on_ranks(encoder, items, output, opts)
    finally:
        distributed.cleanup()
    logger.info("%s -> %s", summary, output)
    for problem in summary.bad:
        logger.warning("bad input: %s", problem)
    return 0
