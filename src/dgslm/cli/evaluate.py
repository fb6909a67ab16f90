"""``dgslm evaluate``: turn-taking statistics (IPUs, pauses, gaps, overlaps) of stereo dialogues."""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import asdict

from tqdm import tqdm

from dgslm.evaluation.dialogues import EvaluationConfig, analyse, iter_dialogues
from dgslm.evaluation.turn_taking import DialogueEvents, TurnTakingStats
from dgslm.evaluation.vad import VAD_METHODS, EnergyVadConfig, SileroVadConfig

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="stereo audio files, folders (searched recursively) or code files")
    parser.add_argument(
        "--vad", choices=VAD_METHODS, default="silero", help="voice activity detector (default: silero)"
    )
    parser.add_argument(
        "--min-silence", type=float, default=0.2, help="silence (s) that separates two IPUs (default: 0.2)"
    )
    parser.add_argument(
        "--energy-threshold-db",
        type=float,
        default=EnergyVadConfig.threshold_db,
        help="energy VAD: speech threshold relative to the channel's 99th-percentile frame level (default: -30)",
    )
    parser.add_argument("--vocoder", help="unit HiFi-GAN checkpoint, to evaluate code files")
    parser.add_argument("--vocoder-cfg", help="the vocoder's JSON config (default: a converted folder's)")
    parser.add_argument("--device", default=None, help="vocoder device (default: cuda if available)")
    parser.add_argument("--reference", help="a folder (or file) of reference dialogues to compare with")
    parser.add_argument("--json", action="store_true", help="print JSON on stdout instead of a table")
    parser.add_argument("--full-duplex", type=int, choices=(0, 1), metavar="PERSON",
                        help="also the Full-Duplex-Bench behavioural metrics (pause and turn-end takeover, latency, "
                             "yield to interruptions) of the model, the channel other than PERSON (0 or 1); the "
                             "person's timeline from the --reference dialogue of the same name, else from the "
                             "person's channel (see dgslm.evaluation.full_duplex)")  # fmt: skip
    parser.add_argument("--plot-dir", help="write PNG timelines and duration histograms here")
    parser.add_argument("--plot-seconds", type=float, default=60.0, help="seconds shown per timeline (default: 60)")
    parser.add_argument(
        "--max-timelines", type=int, default=10, help="timelines drawn, first dialogues first (default: 10)"
    )


def _load_vocoder(args: argparse.Namespace):
    if not args.vocoder:
        return None
    from dgslm.errors import DgslmError

    if not args.vocoder_cfg and not os.path.isdir(args.vocoder):
        raise DgslmError("--vocoder needs --vocoder-cfg (unless it is a converted folder)")
    from dgslm.device import pick_device
    from dgslm.vocoder.unit_vocoder import UnitVocoder

    return UnitVocoder.from_pretrained(args.vocoder, args.vocoder_cfg, device=pick_device(args.device))


def evaluate_set(paths: list[str], cfg: EvaluationConfig, vocoder=None, desc: str = "evaluate") -> list[DialogueEvents]:
    """Turn-taking events of every dialogue under ``paths``."""
    with tqdm(iter_dialogues(paths, vocoder), desc=desc, unit="dialogue", leave=False, disable=None) as dialogues:
        return [analyse(wave, sr, cfg, name, path) for name, wave, sr, path in dialogues]


def run(args: argparse.Namespace) -> int:
    cfg = EvaluationConfig(
        vad=args.vad,
        min_silence=args.min_silence,
        energy=EnergyVadConfig(threshold_db=args.energy_threshold_db),
        silero=SileroVadConfig(),
    )
    vocoder = _load_vocoder(args)
    events = evaluate_set(args.inputs, cfg, vocoder)
    stats = TurnTakingStats.from_events(events)
    reference, reference_events = None, None
    if args.reference:
        reference_events = evaluate_set([args.reference], cfg, vocoder, "reference")
        reference = TurnTakingStats.from_events(reference_events)
    duplex = None if args.full_duplex is None else full_duplex_results(events, reference_events, args.full_duplex)
    if args.plot_dir:
        from pathlib import Path

        from dgslm.evaluation.plots import plot_histograms, plot_timeline, safe_name

        folder = Path(args.plot_dir)
        for i, e in enumerate(events[: args.max_timelines]):
            plot_timeline(e, folder / f"{i:03d}_{safe_name(e.name)}.timeline.png", args.plot_seconds)
        plot_histograms(stats, folder / "histograms.png", reference)
        log.info("plots written to %s", folder)
    if args.json:
        from dgslm.evaluation.report import compare

        out = {
            "config": asdict(cfg),
            "summary": stats.to_dict(),
            "dialogues": [{"name": e.name, **TurnTakingStats.from_events([e]).to_dict()} for e in events],
        }
        if reference is not None:
            out["reference"] = reference.to_dict()
            out["comparison"] = compare(stats, reference)
        if duplex is not None:
            from dgslm.evaluation.full_duplex import summarize

            out["full_duplex"] = {"summary": summarize(duplex), "dialogues": [r.to_dict() | {"name": r.name} for r in duplex]}  # fmt: skip
        print(json.dumps(out, indent=2))
    else:
        from dgslm.evaluation.report import format_table

        print(format_table(stats, reference))
        if duplex is not None:
            from dgslm.evaluation.full_duplex import format_summary, summarize

            print(format_summary(summarize(duplex)))
    return 0


def full_duplex_results(events: list[DialogueEvents], reference: list[DialogueEvents] | None, person: int) -> list:
    """Full-Duplex-Bench outcomes of every session; the person's timeline from the reference
    dialogue of the same name when there are reference dialogues, else from their channel."""
    from dgslm.errors import DgslmError
    from dgslm.evaluation.full_duplex import (
        FullDuplexConfig,
        full_duplex,
        timeline_from_channel,
        timeline_from_dialogue,
    )

    cfg = FullDuplexConfig()
    by_name = {e.name: e for e in reference or []}
    results = []
    for e in events:
        if reference is None:
            timeline = timeline_from_channel(e, person, cfg)
        elif e.name in by_name:
            timeline = timeline_from_dialogue(by_name[e.name], person, cfg)
        else:
            raise DgslmError(f"--full-duplex: no reference dialogue named {e.name!r} gives the person's timeline")
        results.append(full_duplex(e, timeline, person, cfg))
    return results
