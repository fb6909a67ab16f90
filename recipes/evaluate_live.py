r"""How well does the live engine talk? One channel of each held-out dialogue is the person.

1. ``corpus``: held-out synthetic dialogues (``dgslm synth-corpus``, seed 1 as build_demo.sh's
   heldout step; reused when ``--corpus`` holds one) and their units (``dgslm encode`` with the
   model's k-means; reused from ``--units``);
2. ``sessions``: each dialogue's channel A is played 20 ms at a time into the live engine
   (:class:`dgslm.live.DuplexSession`: streaming units with the engine's own look-ahead, the
   dialogue step sampling the model's channel B), as ``dgslm duplex`` does; only the vocoder is
   left out (the statistics are read from units, and it does not change them: the same units as
   ``dgslm duplex --save-units``, tested). Per model (``--model NAME=PATH``, default the bundled
   demo as ``full``) and, with ``--deaf``, a control: the first model hearing the person of
   another dialogue (its channel is then independent of the person's, as a no-cross-attention
   model's is);
3. ``render``: each session as the person hears it (the model's units delayed by the engine's
   algorithmic latency) and the corpus units of the same span, as unit-energy stereo wavs
   (as ``recipes/evaluate_demo.py``);
4. ``evaluate``: ``dgslm evaluate --vad energy --json --full-duplex 0 --reference <corpus>``:
   per-minute IPUs, pauses, gaps, overlaps and the Full-Duplex-Bench metrics, the person's
   timeline from the corpus dialogue;
5. ``report``: errors vs the corpus with 90% bootstrap intervals over dialogues, the
   Full-Duplex-Bench table with intervals, ``OUT/results.json`` and ``OUT/results.md``.

    python recipes/evaluate_live.py live-eval --hours 0.2 --deaf \
        [--model no-cross=demo-build/speechdlm_nocross/checkpoint_best.pt --data demo-build/data-bin]
Every dgslm command run is printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

import numpy as np
from evaluate_demo import (
    FRAME_RATE,
    bootstrap_intervals,
    dgslm,
    error_table,
    evaluate,
    fill_unk,
    signed_errors,
    table,
    totals,
    unit_energy_wavs,
)
from tqdm import tqdm

from dgslm.audio import load_audio
from dgslm.encoder.kmeans import load_centers
from dgslm.fileio import atomic_write
from dgslm.units.codes import read_code_file

CORPUS = "corpus units"
TARGET = 0.20  # every per-minute statistic within 20% of the corpus
FD_KEYS = ("pause_takeover_rate", "turn_takeover_rate", "median_latency", "median_yield_seconds", "yield_rate")
log = logging.getLogger("evaluate_live")


def corpus(out: Path, folder: Path | None, units: Path | None, hours: float, km: Path) -> tuple[Path, Path]:
    """The held-out corpus folder and its code file (made when missing)."""
    folder = folder or out / "heldout"
    if not (folder / "corpus.json").is_file():
        dgslm("synth-corpus", "--out", folder, "--hours", hours, "--seed", 1, "--workers", 1,
              "--min-dialogue-seconds", 30, "--max-dialogue-seconds", 90)  # fmt: skip
    units = units or out / "heldout.code"
    if not units.is_file():
        dgslm("encode", "--manifest-path", folder / "manifest.tsv", "-o", units, "--km", km, "--feature-type", "logmel",
              "--min-silence-frames", 5, "--min-speech-frames", 3, "--device", "cpu")  # fmt: skip
    return folder, units


def engine_units(session, audio: np.ndarray) -> tuple[list[int], list[int]]:
    """Play ``audio`` (the person, 16 kHz mono) into ``session`` frame by frame, as
    ``DuplexSession.step`` does without its vocoder: (person's units, model's units)."""
    frame = session.frame_samples
    padded = np.zeros(-(-len(audio) // frame) * frame, dtype=np.float32)
    padded[: len(audio)] = audio
    person, model = [], []
    for k in range(len(padded) // frame):
        user = session.units.push(padded[k * frame : (k + 1) * frame])
        if session.units.pushed <= session.units.lookahead:
            continue  # the model's first unit waits for the person's look-ahead
        if user is not None:
            person.append(user)
        model.append(session.dialogue.advance(user))
    n = min(len(person), len(model))
    return person[:n], model[:n]


def session_cache(name: str, path: str | None, data: Path | None, i: int, wavs: list[Path], heard: int, args):
    """(cache file, key) of dialogue ``i``'s session with the person of dialogue ``heard``."""
    key = [path, str(data), str(wavs[heard]), args.seed + i, args.temperature, args.context_window]
    return args.out / f"{name}.sessions" / f"{wavs[i].stem}.json", key


def is_cached(cache: Path, key: list) -> bool:
    return cache.is_file() and json.loads(cache.read_text())["key"] == key


def sessions(name: str, path: str | None, data: Path | None, chosen: list[int], wavs: list[Path], hear, args) -> dict:
    """Sessions of one model: for each ``chosen`` dialogue ``i`` the person of dialogue
    ``hear(i)`` played in (seed ``--seed + i``); both channels' units and the engine's latency in
    frames. Each session is cached in OUT/NAME.sessions/DIALOGUE.json (a run resumes)."""
    (args.out / f"{name}.sessions").mkdir(exist_ok=True)
    engine, out = None, {"units": []}
    for i in tqdm(chosen, desc=name, unit="dialogue"):
        cache, key = session_cache(name, path, data, i, wavs, hear(i), args)
        if not is_cached(cache, key):
            engine = engine or load_engine(path, data, args)
            audio, _ = load_audio(wavs[hear(i)])
            person, model = engine_units(engine.new_session(seed=args.seed + i), audio[:, 0])
            latency = round(engine.algorithmic_latency_ms * FRAME_RATE / 1000)
            done = {"key": key, "audio": wavs[i].stem, "latency_frames": latency, "person": person, "model": model}
            with atomic_write(cache) as f:
                json.dump(done, f)
        out["units"].append(json.loads(cache.read_text()))
    out["latency_frames"] = out["units"][0]["latency_frames"]
    return out


def load_engine(path: str | None, data: Path | None, args):
    """The live engine (one thread) with the SpeechDLM at ``path`` (None: the bundled demo)."""
    import torch

    from dgslm.live.session import DuplexSession
    from dgslm.lm.generate import GenerationConfig

    torch.set_num_threads(1)
    paths = {"speech_dlm": path, "speech_dlm_data": str(data) if data else None} if path else {}
    config = GenerationConfig(temperature=args.temperature, context_window=args.context_window)
    return DuplexSession.from_pretrained(config, args.seed, 0, "cpu", **paths)


def render(records: list[dict], model: dict | None, latency: int, silence: int, centers, folder: Path) -> Path:
    """Unit-energy stereo wavs of each dialogue: the person's corpus units on channel A and, on B,
    the model's units of its session (``model``) or the corpus partner's (None), ``latency``
    frames late."""
    rows = []
    for i, r in enumerate(records):
        a = fill_unk(r["unitA"].split())[0]
        b = fill_unk(r["unitB"].split())[0] if model is None else [str(u) for u in model["units"][i]["model"]]
        b = ([str(silence)] * latency + b)[: len(a)]
        b += [str(silence)] * (len(a) - len(b))
        rows.append({"audio": r["audio"], "unitA": " ".join(a), "unitB": " ".join(b)})
    shutil.rmtree(folder, ignore_errors=True)  # no dialogue of an earlier, larger run stays
    return unit_energy_wavs(rows, centers, folder)


def fd_intervals(dialogues: list[dict], draws: int, seed: int = 0) -> dict[str, list[float | None]]:
    """90% bootstrap intervals of the Full-Duplex-Bench metrics, resampling dialogues."""
    from dgslm.evaluation.full_duplex import FullDuplexResult, summarize

    results = [FullDuplexResult(d["name"], *(np.array(d["events"][k], dtype=float) for k in
               ("pause_takeovers", "turn_takeovers", "turn_latencies", "yield_seconds", "yielded")))
               for d in dialogues]  # fmt: skip
    picks = np.random.default_rng(seed).integers(len(results), size=(draws, len(results)))
    drawn = [summarize([results[i] for i in p]) for p in picks]
    out = {}
    for key in FD_KEYS:
        values = [d[key] for d in drawn if d[key] is not None]
        out[key] = np.percentile(values, [5, 95], method="nearest").tolist() if values else [None, None]
    return out


def fd_table(summaries: dict[str, dict], intervals: dict[str, dict]) -> str:
    """The Full-Duplex-Bench table, one row per model (and the corpus partner)."""
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    head = ("| | pauses | pause takeover ↓ | turn ends | turn takeover ↑ | median latency s ↓ | "
            "interruptions | median yield s ↓ | yield rate ↑ |")  # fmt: skip
    lines = [head, "|" + "---|" * 9]
    for name, s in summaries.items():
        cell = lambda k: f"{fmt(s[k])} [{fmt(intervals[name][k][0])}, {fmt(intervals[name][k][1])}]"  # noqa: E731
        lines.append(f"| {name} | {s['pauses']} | {cell('pause_takeover_rate')} | {s['turn_ends']} | "
                     f"{cell('turn_takeover_rate')} | {cell('median_latency')} | {s['interruptions']} | "
                     f"{cell('median_yield_seconds')} | {cell('yield_rate')} |")  # fmt: skip
    return "\n".join(lines)


def report(results: dict[str, dict], agreement: dict[str, float], args) -> str:
    """results.md: the statistics, the errors with intervals, the Full-Duplex-Bench table."""
    stats = {name: r["summary"] for name, r in results.items()}
    source = {d["name"]: i for i, d in enumerate(results[CORPUS]["dialogues"])}
    groups = len(source)
    reference = totals(results[CORPUS]["dialogues"], source, groups)
    models = [name for name in results if name != CORPUS]
    intervals = {n: bootstrap_intervals(totals(results[n]["dialogues"], source, groups), reference, args.bootstrap)
                 for n in models}  # fmt: skip
    fd = {name: r["full_duplex"]["summary"] for name, r in results.items()}
    fd_ci = {name: fd_intervals(r["full_duplex"]["dialogues"], args.bootstrap) for name, r in results.items()}
    worst = {n: max(abs(v) for v in signed_errors(stats[n], stats[CORPUS]).values()) for n in models}
    summary = {"per_minute_errors": {n: signed_errors(stats[n], stats[CORPUS]) for n in models},
               "intervals": intervals, "worst_error": worst, "full_duplex": fd, "full_duplex_intervals": fd_ci,
               "person_unit_agreement": agreement, "target": TARGET}  # fmt: skip
    (args.out / "results.json").write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()},
                                                       "statistics": stats, **summary}, indent=2))  # fmt: skip
    text = "\n\n".join([table(stats), error_table(stats, intervals), fd_table(fd, fd_ci),
                        "worst |error| per model: " + ", ".join(f"{n} {w:.0%}" for n, w in worst.items())
                        + f" (target {TARGET:.0%}); person's streaming units = corpus units: "
                        + ", ".join(f"{n} {a:.1%}" for n, a in agreement.items())])  # fmt: skip
    (args.out / "results.md").write_text(text + "\n")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="work and output folder")
    parser.add_argument("--corpus", type=Path, help="held-out corpus folder (default: OUT/heldout, synthesised)")
    parser.add_argument("--units", type=Path, help="its code file (default: OUT/heldout.code, encoded)")
    parser.add_argument("--hours", type=float, default=0.2, help="hours of held-out dialogue to synthesise")
    parser.add_argument("--max-dialogues", type=int, default=0, help="the first ... dialogues (0: all)")
    parser.add_argument("--cached-only", action="store_true",
                        help="only the dialogues whose sessions are all cached already (a partial run's report)")  # fmt: skip
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="a SpeechDLM (checkpoint or folder; default: full=the bundled demo); repeatable")  # fmt: skip
    parser.add_argument("--data", type=Path, help="dictionaries of .pt checkpoints (--speech-dlm-data)")
    parser.add_argument("--deaf", action="store_true", help="also the first model hearing another dialogue's person")
    parser.add_argument("--temperature", type=float, default=1.025,
                        help="sampling temperature (default 1.025: the demo's, tuned for 30 s continuations)")  # fmt: skip
    parser.add_argument("--context-window", type=int, default=512,
                        help="positions attended to (default 512: the demo's training blocks; 0: the model's)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--bootstrap", type=int, default=2000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)

    from dgslm.models.resolve import resolve_model_paths

    km = Path(resolve_model_paths().kmeans)
    folder, code = corpus(args.out, args.corpus, args.units, args.hours, km)
    every = list(read_code_file(code))
    wavs = [folder / "wav" / f"{r['audio']}.wav" for r in every]
    centers = load_centers(km)
    silence = int(np.argmin(np.exp(centers).sum(1)))  # the quietest unit
    models = dict(spec.split("=", 1) for spec in args.model) or {"full": None}
    runs = {name: (path, lambda i: i) for name, path in models.items()}
    if args.deaf:  # the person of the next dialogue of the code file
        first, path = next(iter(models.items()))
        runs[f"{first}, deaf"] = (path, lambda i: (i + 1) % len(wavs))
    chosen = list(range(len(every)))[: args.max_dialogues or None]
    if args.cached_only:
        chosen = [i for i in chosen if all(is_cached(*session_cache(n.replace(", ", "_"), p, args.data, i, wavs,
                                                                       hear(i), args)) for n, (p, hear) in runs.items())]  # fmt: skip
    records = [every[i] for i in chosen]
    minutes = sum(len(r["unitA"].split()) for r in records) / FRAME_RATE / 60
    log.info("%d held-out dialogues (%.1f min); runs: %s", len(records), minutes, ", ".join(runs))

    folders = {CORPUS: render(records, None, 0, silence, centers, args.out / "wav" / "corpus")}
    agreement = {}
    for name, (path, hear) in runs.items():
        done = sessions(name.replace(", ", "_"), path, args.data, chosen, wavs, hear, args)
        same = [np.mean(np.array(s["person"]) == np.array(list(map(int, r["unitA"].split()))[: len(s["person"])]))
                for i, s, r in zip(chosen, done["units"], records) if hear(i) == i]  # fmt: skip
        if same:
            agreement[name] = float(np.mean(same))
        latency = done["latency_frames"]
        folders[name] = render(records, done, latency, silence, centers,
                               args.out / "wav" / name.replace(", ", "_"))  # fmt: skip
    late = f"corpus partner +{latency * 1000 // FRAME_RATE} ms"  # the engine's latency alone
    folders[late] = render(records, None, latency, silence, centers, args.out / "wav" / "corpus_late")
    results = {name: evaluate(folder, "--reference", folders[CORPUS], "--full-duplex", 0)
               for name, folder in folders.items()}  # fmt: skip
    print(report(results, agreement, args))


if __name__ == "__main__":
    main()
