"""The ``dgslm encode`` job: stereo recordings to a code file (and per-channel unit files).

Resumable: each finished file is appended (and fsynced) to a hidden JSON-lines journal beside
the output, ``.<output name>.partial``, after a header with the run's fingerprint (encoder
weights, k-means, settings, channels); a re-run with the same fingerprint skips the files listed
there, one with another fingerprint starts afresh. When every
file is done the code file (and the per-channel files) are written atomically in input
order and the journal is removed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dgslm.audio import SAMPLE_RATE, load_audio
from dgslm.encoder.inputs import AudioItem
from dgslm.encoder.unit_encoder import UnitEncoder, units_to_string
from dgslm.errors import DgslmError
from dgslm.fileio import atomic_write
from dgslm.units.codes import format_code_line

logger = logging.getLogger(__name__)


@dataclass
class EncodeOptions:
    channels: tuple[str, ...] = ("unitA", "unitB")  # code-file keys of channel 1, 2, ...
    allow_mono: bool = False  # encode a mono file as if both channels were that signal
    skip_bad: bool = False  # report unreadable files and go on, instead of stopping
    batch_size: int = 2  # channels per forward pass
    per_channel_dir: Path | None = None  # also write <dir>/<output stem>.<channel> unit files
    hide_fname: bool = False  # per-channel lines without the "name-channelK|" prefix
    fmt: str = "python"  # code file format: "python" (the original's) or "jsonl"
    channel_id: int | None = None  # the original's --channel_id K: encode channel K only, write its unit lines


@dataclass
class EncodeSummary:
    encoded: int = 0
    resumed: int = 0
    bad: list[str] = field(default_factory=list)
    audio_seconds: float = 0.0
    seconds: float = 0.0

    def __str__(self) -> str:
        speed = f", {self.audio_seconds / self.seconds:.1f}x real time" if self.seconds and self.audio_seconds else ""
        return (
            f"encoded {self.encoded} files ({self.audio_seconds:.1f} s of audio in {self.seconds:.1f} s{speed}), "
            f"{self.resumed} already done, {len(self.bad)} bad"
        )


def journal_path(output: Path) -> Path:
    """The hidden file beside ``output`` where finished records are kept until the end (resume)."""
    return output.parent / f".{output.name}.partial"


def read_journal(path: Path, fingerprint: str) -> dict[str, dict[str, str]]:
    """Finished records by name, if the journal was written with the same ``fingerprint`` (the
    encoder and every option that changes the units); a torn last line (a crash mid-write) is
    ignored, a journal of other settings is discarded."""
    done: dict[str, dict[str, str]] = {}
    if not path.exists():
        return done
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except ValueError:
        header = {}
    if not isinstance(header, dict) or header.get("fingerprint") != fingerprint:
        logger.warning("%s: discarding the work of an earlier run with another encoder or options", path)
        return done
    for line in lines[1:]:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        done[record["audio"]] = record
    return done


def journal_fingerprint(encoder: UnitEncoder, opts: EncodeOptions) -> str:
    """What a journal's records depend on: the encoder and the options that change them."""
    return json.dumps({"encoder": encoder.fingerprint(), "channels": opts.channels, "allow_mono": opts.allow_mono})


def read_channels(item: AudioItem, n_channels: int, allow_mono: bool) -> np.ndarray:
    """[frames, n_channels] audio at 16 kHz; a mono file is refused unless ``allow_mono``."""
    if item.source is not None and not item.path.is_file():
        raise item.error("no such audio file")
    wave, _ = load_audio(item.path, SAMPLE_RATE)
    if wave.shape[1] == 1 and allow_mono:
        return np.repeat(wave, n_channels, axis=1)
    if wave.shape[1] != n_channels:
        hint = " (use --allow-mono to encode a mono file as both channels)" if wave.shape[1] == 1 else ""
        raise item.error(f"expected {n_channels} channels, the file has {wave.shape[1]}{hint}")
    return wave


def encode_item(encoder: UnitEncoder, item: AudioItem, opts: EncodeOptions) -> tuple[dict[str, str], float]:
    """One file -> its code record and its duration in seconds."""
    wave = read_channels(item, len(opts.channels), opts.allow_mono)
    channels = opts.channels
    if opts.channel_id is not None:
        wave, channels = wave[:, opts.channel_id - 1 : opts.channel_id], channels[opts.channel_id - 1 : opts.channel_id]
    try:
        units = encoder.units(torch.from_numpy(np.ascontiguousarray(wave.T)), opts.batch_size)
    except DgslmError as err:
        raise item.error(str(err)) from None
    record = {"audio": item.name} | {ch: units_to_string(u) for ch, u in zip(channels, units)}
    return record, len(wave) / SAMPLE_RATE


def output_files(output: Path, opts: EncodeOptions) -> list[Path]:
    """The files a job writes: the code file, then one unit file per channel with
    ``per_channel_dir``; with ``channel_id`` only ``output``, holding that channel's lines."""
    if opts.channel_id is not None or opts.per_channel_dir is None:
        return [output]
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    return [output] + [Path(opts.per_channel_dir) / f"{stem}.{channel}" for channel in opts.channels]


def write_unit_lines(path: Path, records: Sequence[dict[str, str]], channel: str, k: int, hide_fname: bool) -> None:
    """Channel ``k``'s lines as the original quantiser writes them: ``name-channelK|units``,
    or the units alone with ``hide_fname``."""
    with atomic_write(path) as handle:
        for r in records:
            handle.write(r[channel] + "\n" if hide_fname else f"{r['audio']}-channel{k}|{r[channel]}\n")


def write_outputs(output: Path, records: Sequence[dict[str, str]], opts: EncodeOptions) -> None:
    """The files of :func:`output_files`, atomically."""
    if opts.channel_id is not None:
        channel = opts.channels[opts.channel_id - 1]
        write_unit_lines(output, records, channel, opts.channel_id, opts.hide_fname)
        return
    with atomic_write(output) as handle:
        handle.writelines(format_code_line(r, opts.fmt) + "\n" for r in records)
    for k, (channel, path) in enumerate(zip(opts.channels, output_files(output, opts)[1:]), start=1):
        write_unit_lines(path, records, channel, k, opts.hide_fname)


def encode_files(
    encoder: UnitEncoder, items: Sequence[AudioItem], output: str | os.PathLike, opts: EncodeOptions = EncodeOptions()
) -> EncodeSummary:
    """Encode ``items`` into the code file ``output``; resumes from the journal if present."""
    output = Path(output)
    if opts.per_channel_dir is not None and not opts.hide_fname:
        for item in items:  # a name is a line prefix there: a line break would inject lines
            if any(c in item.name for c in "\n\r|"):
                raise item.error("a line break or '|' in the file name cannot be written to --per-channel-dir files")
    journal = journal_path(output)
    fingerprint = journal_fingerprint(encoder, opts)
    done = read_journal(journal, fingerprint)
    summary = EncodeSummary(resumed=sum(item.name in done for item in items))
    if summary.resumed:
        logger.info("resuming: %d of %d files already encoded (%s)", summary.resumed, len(items), journal)
    start = time.perf_counter()
    journal.parent.mkdir(parents=True, exist_ok=True)
    with open(journal, "a" if done else "w", encoding="utf-8") as handle:
        if not done:
            handle.write(json.dumps({"fingerprint": fingerprint}) + "\n")
        for item in tqdm([i for i in items if i.name not in done], desc="encode", unit="file"):
            try:
                record, seconds = encode_item(encoder, item, opts)
            except DgslmError as err:
                if not opts.skip_bad:
                    raise
                logger.warning("skipping %s", err)
                summary.bad.append(str(err))
                continue
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            done[item.name] = record
            summary.encoded += 1
            summary.audio_seconds += seconds
    summary.seconds = time.perf_counter() - start
    write_outputs(output, [done[i.name] for i in items if i.name in done], opts)
    journal.unlink()
    return summary
