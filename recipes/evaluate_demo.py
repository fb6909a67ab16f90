r"""Does the demo SpeechDLM learn turn-taking? Continue held-out prompts and compare turn-taking.

From a held-out split (``--split``: ``units/SPLIT.code`` of a ``recipes/build_demo.sh`` work
folder, its audio under ``--corpus``; ``heldout`` is the 2 h corpus of build_demo.sh's heldout step):

1. cut every held-out dialogue into windows of ``--prompt-seconds`` + ``--seconds``, one every
   ``--stride-seconds`` (default: ``--seconds``, so the continuations tile each dialogue once);
2. ``dgslm sample`` continues each prompt with every model given by ``--model NAME=PATH``;
3. ``dgslm evaluate --json --vad energy`` on the continuations (prompt removed) and, as the
   reference, on the true units of the same windows and on the real audio of those windows.
   Units become audio in two ways: a *unit-energy* signal (noise at the log-mel energy above the
   floor of each unit's k-means centre, 20 ms per unit: a vocoder-free rendering of speech vs silence, used
   for the table) and, with ``--vocoder``, the trained unit HiFi-GAN (its silence is not silent,
   so its threshold is ``--vocoded-threshold-db``);
4. ``dgslm validate --json`` per model (accuracy per head: next-unit, or edge-unit and duration error);
5. the signed error of every per-minute statistic against the true continuations, with a 90%
   paired bootstrap interval over held-out dialogues (a dialogue's windows, their continuations
   and the reference resampled together): how far the error may be from sampling noise alone;
6. writes ``OUT/results.json``, ``OUT/results.md`` (the README tables) and, with
   ``--timeline``, the timeline PNG of one generated dialogue (prompt included).

    python recipes/evaluate_demo.py demo-build --split heldout --corpus demo-build/heldout \
        --model full=demo-build/speechdlm/checkpoint_best.pt \
        --model no-cross=demo-build/speechdlm_nocross/checkpoint_best.pt [--vocoder demo-build/vocoder/g_N]
Every dgslm command run is printed, so each number can be reproduced by hand.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np

from dgslm.audio import FRAME_RATE, SAMPLE_RATE, load_audio, write_wav
from dgslm.encoder.features import LogMelFeatures
from dgslm.encoder.kmeans import load_centers
from dgslm.units.codes import read_code_file, write_code_file

CHANNELS = ("unitA", "unitB")
HOP = SAMPLE_RATE // FRAME_RATE  # samples per unit
EVENTS = ("ipu", "pause", "gap", "overlap")
TARGET = 0.15  # every per-minute statistic within 15% of the corpus
REFERENCE = "corpus units"


def dgslm(*args, capture: bool = False) -> str:
    """Run one dgslm command (printed first); its stdout when ``capture``."""
    args = [str(a) for a in args]
    print("$ " + shlex.join(["dgslm", *args]), flush=True)
    done = subprocess.run([shutil.which("dgslm") or "dgslm", *args], check=True, text=True,
                          stdout=subprocess.PIPE if capture else None)  # fmt: skip
    return done.stdout if capture else ""


def evaluate(inputs, *extra) -> dict:
    """``dgslm evaluate --vad energy --json``: the ``summary`` and per-``dialogues`` statistics."""
    return json.loads(dgslm("evaluate", inputs, "--vad", "energy", "--json", *extra, capture=True))


def windows(
    code_file: Path, prompt: int, cont: int, stride: int, limit: int
) -> list[tuple[str, int, dict[str, list[str]]]]:
    """``(dialogue, first frame, units)`` of ``prompt + cont`` frame windows every ``stride`` frames
    (the first ``limit``; all when 0)."""
    out = []
    for record in read_code_file(code_file):
        units = {c: record[c].split() for c in CHANNELS}
        n = len(units[CHANNELS[0]])
        for start in range(0, n - prompt - cont + 1, stride):
            out.append((record["audio"], start, {c: u[start : start + prompt + cont] for c, u in units.items()}))
    return out[:limit] if limit else out


def fill_unk(units: list[str]) -> tuple[list[str], int]:
    """``<unk>`` (sampling may draw it, as in the original) replaced by the unit before it."""
    out, count = [], 0
    for unit in units:
        if not unit.isdigit():
            unit, count = (out[-1] if out else "0"), count + 1
        out.append(unit)
    return out, count


def unit_energy_wavs(records: list[dict], centers: np.ndarray, folder: Path, seed: int = 0) -> Path:
    """One stereo wav per record: white noise at the mel energy of each unit's centre above the
    log-mel floor (so the silence unit is silent), 20 ms a unit."""
    excess = np.clip(np.exp(centers) - LogMelFeatures().floor, 0, None).sum(1)
    level = np.sqrt(excess / excess.max())  # amplitude, loudest unit = 1
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for r in records:
        gains = np.stack([level[[int(u) for u in r[c].split()]] for c in CHANNELS], axis=1)  # [frames, 2]
        wave = 0.3 * np.repeat(gains, HOP, axis=0) * rng.standard_normal((len(gains) * HOP, 2))
        write_wav(folder / f"{r['audio']}.wav", wave.astype(np.float32), SAMPLE_RATE)
    return folder


def audio_windows(corpus: Path, wins, prompt: int, cont: int, folder: Path) -> Path:
    """The real stereo audio of every continuation window."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, start, _ in wins:
        wave, _ = load_audio(corpus / "wav" / f"{name}.wav", SAMPLE_RATE)
        write_wav(
            folder / f"{name}_{start}.wav", wave[(start + prompt) * HOP : (start + prompt + cont) * HOP], SAMPLE_RATE
        )
    return folder


def signed_errors(stats: dict, reference: dict) -> dict[str, float]:
    """ours / reference - 1 of every per-minute statistic (N and Δ of each event); with no such
    reference event: 0 if we have none either, else inf."""
    out = {}
    for event in EVENTS:
        for key in ("per_minute", "seconds_per_minute"):
            ours, ref = stats[event][key], reference[event][key]
            out[f"{event}.{key}"] = ours / ref - 1 if ref else (float("inf") if ours else 0.0)
    return out


def relative_errors(stats: dict, reference: dict) -> dict[str, float]:
    """|ours / reference - 1| of every per-minute statistic."""
    return {k: abs(v) for k, v in signed_errors(stats, reference).items()}


def totals(dialogues: list[dict], source: dict[str, int], groups: int) -> np.ndarray:
    """``[groups, 1 + 2 * events]``: minutes, then each event's count and seconds, summed over the
    evaluated windows of each held-out dialogue (``source``: window name -> dialogue number)."""
    out = np.zeros((groups, 1 + 2 * len(EVENTS)))
    for d in dialogues:
        window = d["name"].rsplit("__", 1)[-1]  # vocoded code files: "<code file>__<record>"
        group = source[window] if window in source else source[window.rsplit("_", 1)[0]]  # sample k: "<window>_k"
        row = [
            d[e][k] * (d["minutes"] if k == "seconds_per_minute" else 1)
            for e in EVENTS
            for k in ("count", "seconds_per_minute")
        ]
        out[group] += [d["minutes"], *row]
    return out


def bootstrap_intervals(
    ours: np.ndarray, reference: np.ndarray, draws: int = 2000, seed: int = 0
) -> dict[str, list[float]]:
    """90% interval of the signed relative error (ours / reference - 1) of every per-minute
    statistic, resampling held-out dialogues with replacement (``totals`` rows, paired)."""
    groups = len(ours)
    picks = np.random.default_rng(seed).integers(groups, size=(draws, groups))
    weights = np.stack([np.bincount(p, minlength=groups) for p in picks])  # [draws, groups]
    a, b = weights @ ours, weights @ reference  # [draws, 1 + 2 * events]
    with np.errstate(divide="ignore", invalid="ignore"):  # no reference event in a draw: as signed_errors
        errors = np.where(
            b[:, 1:] > 0, (a[:, 1:] / a[:, :1]) / (b[:, 1:] / b[:, :1]) - 1, np.where(a[:, 1:] > 0, np.inf, 0.0)
        )
    keys = [f"{e}.{k}" for e in EVENTS for k in ("per_minute", "seconds_per_minute")]
    return {key: np.percentile(errors[:, i], [5, 95], method="nearest").tolist() for i, key in enumerate(keys)}


def table(rows: dict[str, dict]) -> str:
    head = " | ".join(f"{e} N/min | {e} Δ s/min" for e in ("IPU", "pause", "gap", "overlap"))
    lines = [f"| | {head} | worst error vs {REFERENCE} |", "|" + "---|" * (2 + 2 * len(EVENTS))]
    for name, stats in rows.items():
        cells = " | ".join(f"{stats[e]['per_minute']:.1f} | {stats[e]['seconds_per_minute']:.1f}" for e in EVENTS)
        worst = max(relative_errors(stats, rows[REFERENCE]).values()) if REFERENCE in rows else float("nan")
        lines.append(f"| {name} ({stats['minutes']:.1f} min) | {cells} | {worst:.0%} |")
    return "\n".join(lines)


def error_table(stats: dict[str, dict], intervals: dict[str, dict]) -> str:
    """Signed error of each model vs the corpus units, with its 90% bootstrap interval."""
    head = " | ".join(f"{e} N | {e} Δ" for e in ("IPU", "pause", "gap", "overlap"))
    lines = [f"| error vs {REFERENCE} [90% interval] | {head} |", "|" + "---|" * (1 + 2 * len(EVENTS))]
    for name, ci in intervals.items():
        signed = signed_errors(stats[name], stats[REFERENCE])
        lines.append(
            f"| {name} | " + " | ".join(f"{signed[k]:+.0%} [{lo:+.0%}, {hi:+.0%}]" for k, (lo, hi) in ci.items()) + " |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path, help="work folder of recipes/build_demo.sh")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH",
                        help="a SpeechDLM to evaluate (checkpoint .pt or model folder); repeatable")  # fmt: skip
    parser.add_argument("--vocoder", type=Path, help="also evaluate through this vocoder (g_N, config.json beside it)")
    parser.add_argument("--vocoded-threshold-db", type=float, default=-10.0,
                        help="energy VAD threshold for vocoded audio (the demo vocoder's silence is ~11 dB under "
                             "its speech, not silent; -10 gives the corpus units' statistics back within 4%%)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: WORK/turn_taking)")
    parser.add_argument("--prompt-seconds", type=float, default=4.0)
    parser.add_argument(
        "--seconds",
        type=float,
        default=6.0,
        help="continuation (prompt + continuation <= training length, unless --context-window)",
    )
    parser.add_argument("--context-window", type=int, default=0,
                        help="dgslm sample --context-window: attend to at most N positions (the training "
                             "--tokens-per-sample) for continuations longer than the training blocks")  # fmt: skip
    parser.add_argument("--split", default="test",
                        help="held-out dialogues that give the prompts: units/SPLIT.code (heldout, tuning: the "
                             "corpora of build_demo.sh's heldout step, with --corpus WORK/SPLIT)")  # fmt: skip
    parser.add_argument("--corpus", type=Path, default=None, help="the split's corpus folder (default: WORK/corpus)")
    parser.add_argument(
        "--stride-seconds", type=float, default=None, help="window start every ... (default: --seconds)"
    )
    parser.add_argument("--max-prompts", type=int, default=50, help="the first ... windows (0: all)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap draws for the error intervals")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--samples", type=int, default=1, help="continuations per prompt (more: less sampling noise)")
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--timeline", type=Path, default=None, help="write one generated dialogue's timeline PNG here")
    return parser.parse_args()


class Prompts:
    """Step 1: the held-out windows, their prompts (``OUT/prompts.code``, each window ``--samples``
    times: sample k of a window is its name + _k) and the true continuations."""

    def __init__(self, args: argparse.Namespace, out: Path):
        self.prompt, self.cont = round(args.prompt_seconds * FRAME_RATE), round(args.seconds * FRAME_RATE)
        self.stride = round((args.stride_seconds or args.seconds) * FRAME_RATE)
        self.wins = windows(args.work / "units" / f"{args.split}.code", self.prompt, self.cont, self.stride,
                            args.max_prompts)  # fmt: skip
        name_of = lambda dialogue, start: f"{dialogue}_{start}"  # noqa: E731
        write_code_file(out / "prompts.code", [{"audio": f"{name_of(d, s)}_{k}", **{c: " ".join(u[c][:self.prompt]) for c in CHANNELS}}
                                               for d, s, u in self.wins for k in range(args.samples)])  # fmt: skip
        self.truth = [
            {"audio": name_of(d, s), **{c: " ".join(u[c][self.prompt :]) for c in CHANNELS}} for d, s, u in self.wins
        ]
        # held-out dialogue -> number, and window -> its dialogue's number
        self.dialogues = {d: i for i, d in enumerate(sorted({d for d, _, _ in self.wins}))}
        self.source = {name_of(d, s): self.dialogues[d] for d, s, _ in self.wins}
        print(f"{len(self.wins)} prompts from {len(self.dialogues)} held-out dialogues of {args.prompt_seconds:g} s, {args.samples} x {args.seconds:g} s continuations",
              flush=True)  # fmt: skip


def continue_prompts(
    args: argparse.Namespace, out: Path, prompts: Prompts, name: str, path: str
) -> tuple[list[dict], int, dict]:
    """Steps 2 and 4 for one model: ``dgslm sample`` and ``dgslm validate`` (reused when run with the
    same settings before); its continuations (``<unk>`` filled), the ``<unk>`` drawn, the validation."""
    generated, validation = out / f"{name}.generated.code", out / f"{name}.validate.json"
    prompt, cont = prompts.prompt, prompts.cont
    key = json.dumps([path, args.split, len(prompts.wins), args.prompt_seconds, args.seconds, prompts.stride, args.max_prompts,
                      args.temperature, args.seed, args.samples, args.context_window])  # fmt: skip
    if not (out / f"{name}.key").is_file() or (out / f"{name}.key").read_text() != key:  # else reuse
        dgslm("sample", "--in-file", out / "prompts.code", "--ckpt", path, "--data", args.work / "data-bin",
              "--out-file", generated, "--max-len-b", prompt + cont, "--beam-size", 1,
              "--temperature", args.temperature, "--seed", args.seed, "--context-window", args.context_window)  # fmt: skip
        validation.write_text(dgslm("validate", args.work / "data-bin", "--path", path, "--valid-subset",
                                    "valid,test", "--max-tokens", 4096, "--num-workers", 0, "--json", capture=True))  # fmt: skip
        (out / f"{name}.key").write_text(key)
    records, unks = [], 0
    for r in read_code_file(generated):
        filled = {c: fill_unk(r[c].split()) for c in CHANNELS}
        unks += sum(n for _, n in filled.values())
        n = min(len(u) for u, _ in filled.values())  # a drawn </s> is dropped from its channel
        records.append({"audio": r["audio"].removesuffix("-generated"), **{c: u[:n] for c, (u, _) in filled.items()}})
    return records, unks, json.loads(validation.read_text())


def turn_taking(
    args: argparse.Namespace, out: Path, prompts: Prompts, sets: dict[str, list[dict]], centers: np.ndarray
) -> tuple[dict, dict]:
    """Step 3: ``dgslm evaluate`` of the real audio windows and of every set of units, rendered as
    unit energy and (with ``--vocoder``) vocoded: ``(energy, vocoded)`` results by name."""
    corpus = args.corpus or args.work / "corpus"
    audio = audio_windows(corpus, prompts.wins, prompts.prompt, prompts.cont, out / "wav_corpus_audio")
    energy, vocoded = {"corpus audio": evaluate(audio)}, {}
    for name, records in sets.items():
        write_code_file(out / f"{name}.code", records)
        energy[name] = evaluate(unit_energy_wavs(records, centers, out / f"wav_energy_{name}"))
        if args.vocoder:
            vocoded[name] = evaluate(out / f"{name}.code", "--vocoder", args.vocoder, "--vocoder-cfg", args.vocoder.parent / "config.json",
                                     "--energy-threshold-db", args.vocoded_threshold_db)  # fmt: skip
    return energy, vocoded


def timeline(args: argparse.Namespace, out: Path, first: dict, centers: np.ndarray) -> None:
    """Step 6: the timeline PNG of one generated dialogue (prompt included) at ``--timeline``."""
    folder = unit_energy_wavs([first], centers, out / "wav_timeline")
    evaluate(folder, "--plot-dir", out / "timeline", "--max-timelines", 1,
             "--plot-seconds", args.prompt_seconds + args.seconds)  # fmt: skip
    args.timeline.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(next((out / "timeline").glob("*.timeline.png")), args.timeline)


def report(out: Path, results: dict, models: list[str]) -> None:
    """Step 6: ``OUT/results.json``, ``OUT/results.md`` (printed) and one verdict line per model."""
    energy, vocoded, intervals = results["unit_energy"], results["vocoded"], results["error_intervals_90"]
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    text = "Unit-energy rendering:\n\n" + table(energy) + "\n\n" + error_table(energy, intervals) + "\n"
    if vocoded:
        text += "\nVocoded by the demo HiFi-GAN:\n\n" + table(vocoded) + "\n"
    (out / "results.md").write_text(text)
    print(text)
    for name in models:
        errors = list(results["errors_vs_corpus_units"][name].values())
        within, worst = sum(e <= TARGET for e in errors), max(errors)
        outside = [k for k, (lo, hi) in intervals[name].items() if lo > TARGET or hi < -TARGET]
        print(
            f"{name}: {within} of {len(errors)} per-minute statistics within {TARGET:.0%} of the corpus, "
            f"mean error {np.mean(errors):.0%}, worst {worst:.0%}: target {'met' if within == len(errors) else 'not met'}; "
            f"90% interval wholly beyond {TARGET:.0%}: {', '.join(outside) or 'none'}"
        )


def main() -> None:
    args = parse_args()
    out = args.out or args.work / "turn_taking"
    out.mkdir(parents=True, exist_ok=True)
    centers = load_centers(next(args.work.glob("kmeans_logmel_*.safetensors")))  # the units' log-mel k-means
    prompts = Prompts(args, out)
    sets = {REFERENCE: prompts.truth}
    results = {"settings": vars(args) | {"prompts": len(prompts.wins)}, "unk_drawn": {}, "validation": {}}
    first = None
    models = []
    for spec in args.model:
        name, path = spec.split("=", 1)
        records, results["unk_drawn"][name], results["validation"][name] = continue_prompts(
            args, out, prompts, name, path
        )
        first = first or {"audio": f"{name}_{records[0]['audio']}", **{c: " ".join(records[0][c]) for c in CHANNELS}}
        sets[name] = [{"audio": r["audio"], **{c: " ".join(r[c][prompts.prompt :]) for c in CHANNELS}} for r in records]
        models.append(name)
    energy, vocoded = turn_taking(args, out, prompts, sets, centers)
    if args.timeline:
        timeline(args, out, first, centers)
    # step 5: errors against the true continuations, with paired bootstrap intervals over dialogues
    sums = {k: totals(v["dialogues"], prompts.source, len(prompts.dialogues)) for k, v in energy.items()}
    energy = {k: v["summary"] for k, v in energy.items()}
    intervals = {k: bootstrap_intervals(sums[k], sums[REFERENCE], args.bootstrap) for k in ["corpus audio", *models]}
    results |= {"unit_energy": energy, "vocoded": {k: v["summary"] for k, v in vocoded.items()},
                "errors_vs_corpus_units": {k: relative_errors(v, energy[REFERENCE]) for k, v in energy.items()},
                "error_intervals_90": intervals}  # fmt: skip
    report(out, results, models)


if __name__ == "__main__":
    main()
