"""``dgslm vocode``: unit code files to stereo wavs (the original generate_stereo_waveform.py)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)
MAX_UNITS = 500_000  # 10,000 s a line; synthesis runs in chunks, the stereo output takes ~1.3 GB


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--in-file", required=True, help="code file: one {'audio': ..., 'unitA': ..., 'unitB': ...} per line"
    )
    parser.add_argument(
        "--vocoder", required=True, help="unit HiFi-GAN checkpoint ({'generator': state_dict}) or converted folder"
    )
    parser.add_argument("--vocoder-cfg", help="its config.json (default: a converted folder's own)")
    parser.add_argument("--results-path", default=".", help="output folder (default: the current folder)")
    parser.add_argument("--channels", default="unitA,unitB", help="comma-separated channel keys (default: unitA,unitB)")
    parser.add_argument(
        "--sample-rate", type=int, default=16_000, help="output rate; resampled from 16 kHz if different"
    )
    parser.add_argument("--channel1-spk", type=int, default=0, help="speaker id of the first channel (default 0)")
    parser.add_argument("--channel2-spk", type=int, default=4, help="speaker id of the second channel (default 4)")
    parser.add_argument("--mix", action="store_true", help="write the mono mean of the channels")
    parser.add_argument("--dur-prediction", action="store_true", help="predict unit durations (for deduplicated units)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument(
        "--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="compute precision (autocast)"
    )
    parser.add_argument("--cpu", action="store_true", help="same as --device cpu (the original's flag)")
    parser.add_argument(
        "--max-units",
        type=int,
        default=MAX_UNITS,
        help=f"longest unit line accepted (default {MAX_UNITS:,} = {MAX_UNITS // 50 // 3600} h; "
        "the output needs about 2.6 KB of memory per unit)",
    )


def output_name(record: dict[str, str], index: int) -> str | None:
    """``<stem of 'audio'>.wav``, or ``<index>_pred.wav`` (0-based) without an 'audio' key;
    None when the name gives no usable file name (empty, ``.``/``..``, a NUL or line break)."""
    audio = record.get("audio")
    if not audio:
        return f"{index}_pred.wav"
    stem = Path(str(audio)).stem
    if stem in ("", ".", "..") or any(c in stem for c in "\0\n\r"):
        return None
    return f"{stem}.wav"


def output_names(records: list[tuple[int, dict[str, str]]], in_file: str) -> list[str]:
    """One distinct output name per record; a name taken by an earlier line gets ``-2``,
    ``-3``... (said in the log). DgslmError naming the line for an unusable name."""
    from dgslm.errors import DgslmError

    wanted = [output_name(record, index) for index, (_, record) in enumerate(records)]
    taken: set[str] = set()
    names = []
    for (line, record), name in zip(records, wanted):
        if name is None:
            raise DgslmError(f"audio name {str(record.get('audio'))[:80]!r} gives no usable file name", in_file, line)
        unique, n = name, 1
        while unique in taken:
            n += 1
            unique = f"{name[:-4]}-{n}.wav"
        if len(unique.encode()) > 255:
            raise DgslmError(f"audio name {unique[:40]!r}... is longer than a file name may be", in_file, line)
        if unique != name:
            logger.warning("%s:%d: %s is already written by an earlier line; writing %s", in_file, line, name, unique)
        taken.add(unique)
        names.append(unique)
    return names


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from dgslm.audio import resample, write_wav
    from dgslm.cli.options import split_names
    from dgslm.device import pick_device
    from dgslm.errors import DgslmError
    from dgslm.units.codes import iter_code_file
    from dgslm.vocoder.unit_vocoder import UnitVocoder

    device = pick_device("cpu" if args.cpu else args.device)
    channels = split_names(args.channels.replace(" ", ","))
    speakers = [args.channel1_spk, args.channel2_spk]
    if len(channels) != 2:
        raise DgslmError(f"--channels needs two channel keys, got {args.channels!r}")
    dtype = None if args.dtype == "float32" else getattr(torch, args.dtype)
    vocoder = UnitVocoder.from_pretrained(args.vocoder, args.vocoder_cfg, device=device, autocast_dtype=dtype)
    records = list(iter_code_file(args.in_file))
    if not records:
        raise DgslmError("no code lines to vocode", args.in_file)
    out_dir = Path(args.results_path)
    names = output_names(records, args.in_file)
    for line, record in records:  # before any work: a line too long for memory is refused
        longest = max((len(str(record.get(c, "")).split()) for c in channels), default=0)
        if longest > args.max_units:
            raise DgslmError(
                f"a line of {longest:,} units is longer than --max-units {args.max_units:,}", args.in_file, line
            )
    for (line, record), name in zip(tqdm(records, desc="vocode", unit="dialogue"), names):
        missing = [c for c in channels if c not in record]
        if missing:
            raise DgslmError(f"no channel {missing[0]!r} in this line", args.in_file, line)
        codes = [record[c] for c in channels]
        wave = vocoder.stereo(codes, speakers, args.dur_prediction, args.mix, path=args.in_file, line=line)
        wave = resample(wave.numpy(), vocoder.sample_rate, args.sample_rate)
        write_wav(out_dir / name, wave, args.sample_rate)
    logger.info("wrote %d wav files to %s", len(records), os.path.abspath(out_dir))
    return 0
