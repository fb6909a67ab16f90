r"""Turn-taking as a user hears it: the demo's continuations, vocoded, against the same dialogues resynthesised.

On a corpus of new dialogues (``dgslm synth-corpus`` output, ``CORPUS``):

1. ``dgslm encode`` every dialogue with the model's units encoder (the demo: log-mel k-means
   with the smoothing of its ``hubert/config.json``), once (``WORK/units.code``);
2. cut every dialogue into windows of ``--prompt-seconds`` (4) + ``--seconds`` (30), one every
   ``--seconds``, so the continuations tile each dialogue once;
3. ``dgslm sample`` continues every prompt (batched) with **dgslm generate's defaults**
   (:data:`dgslm.pipeline.defaults.DIALOGUE_DEFAULTS`: the same GenerationConfig, the context
   window the model's training block length), or with a ``--setting NAME=FLAGS`` to compare
   (the tuning grid); ``--samples`` continuations per prompt;
4. ``dgslm vocode`` the continuations (prompt removed) and, as the reference, the true units of
   the same windows (the dialogues resynthesised: encode + vocode), with the same vocoder (the
   reference while the continuations are sampled);
5. ``dgslm evaluate --json`` both with the energy VAD (``--energy-threshold-db``) and silero;
6. the signed error of every per-minute statistic against the resynthesised dialogues, with a
   90% paired bootstrap interval over dialogues (``evaluate_demo.bootstrap_intervals``);
   ``WORK/<setting>/results.{json,md}``.

    python recipes/evaluate_demo_audio.py CORPUS WORK [--setting b1_T1.05="--beam-size 1 --temperature 1.05"]

Every dgslm command is printed, so each number can be reproduced by hand.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
from evaluate_demo import CHANNELS, EVENTS, HOP, TARGET, bootstrap_intervals, dgslm, signed_errors, totals, windows

from dgslm.audio import FRAME_RATE
from dgslm.lm.hub import SpeechDLM
from dgslm.model_folder import read_config
from dgslm.models.resolve import DEMO_DIR
from dgslm.pipeline.defaults import DIALOGUE_DEFAULTS
from dgslm.units.codes import read_code_file, write_code_file

VADS = ("energy", "silero")
REFERENCE = "resynthesised"
FLAGS = {"beam": "--beam-size", "temperature": "--temperature", "context_window": "--context-window"}


def default_flags(model: Path) -> list[str]:
    """``dgslm generate``'s default generation options as ``dgslm sample`` flags (a context
    window of None: the model's training block length)."""
    block = SpeechDLM.from_pretrained(model).block_length
    values = dict(DIALOGUE_DEFAULTS)
    if values["context_window"] is None:
        values["context_window"] = block
    return [str(x) for field, value in values.items() for x in (FLAGS[field], value)]


def encode(corpus: Path, units: Path, encoder: Path) -> None:
    """Step 1: every dialogue of ``corpus`` -> ``units`` with the feature encoder of ``encoder``."""
    if units.is_file():
        return
    cfg = read_config(encoder / "config.json")
    dgslm("encode", "--manifest-path", corpus / "manifest.tsv", "-o", units, "--km", encoder / "kmeans.safetensors",
          "--feature-type", cfg["feature_type"], "--min-silence-frames", cfg.get("min_silence_frames", 0),
          "--min-speech-frames", cfg.get("min_speech_frames", 0), "--device", "cpu")  # fmt: skip


def continuations(records: list[dict], prompt: int) -> list[dict]:
    """The continuation part (after ``prompt`` units) of full code-file records."""
    return [{"audio": r["audio"], **{c: " ".join(r[c].split()[prompt:]) for c in CHANNELS}} for r in records]


def start_vocode(code: Path, folder: Path, vocoder: Path, jobs: int) -> list[subprocess.Popen]:
    """Step 4, started: ``dgslm vocode`` of ``code`` into ``folder`` in ``jobs`` processes (each a
    slice of its lines; written as ``folder.tmp``, renamed when complete, so that a folder is
    always whole); nothing when it is already there."""
    if folder.is_dir():
        return []
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    records = read_code_file(code)
    processes = []
    for job in range(jobs):
        part = tmp / f"part{job}.code"
        write_code_file(part, records[job::jobs])
        args = ["vocode", "--in-file", part, "--vocoder", vocoder, "--results-path", tmp, "--device", "cpu"]
        print("$ " + shlex.join(["dgslm", *map(str, args)]), flush=True)
        processes.append(subprocess.Popen([shutil.which("dgslm") or "dgslm", *map(str, args)]))
    return processes


def finish_vocode(processes: list[subprocess.Popen], folder: Path) -> None:
    """Wait for :func:`start_vocode`'s processes and move their output into place."""
    if failed := [p.returncode for p in processes if p.wait()]:
        raise SystemExit(f"dgslm vocode failed ({failed}) for {folder}")
    if processes:
        tmp = folder.with_name(folder.name + ".tmp")
        for part in tmp.glob("part*.code"):
            part.unlink()
        tmp.rename(folder)


def evaluate_vads(folder: Path, threshold: float, vads: list[str]) -> dict[str, dict]:
    """Step 5: ``dgslm evaluate --json`` of the wavs in ``folder``, per VAD."""
    out = {}
    for vad in vads:
        extra = ["--energy-threshold-db", threshold] if vad == "energy" else []
        out[vad] = json.loads(dgslm("evaluate", folder, "--vad", vad, "--json", *extra, capture=True))
    return out


def error_row(name: str, stats: dict, reference: dict, ci: dict[str, list[float]]) -> str:
    """One Markdown row: each statistic's signed error [90% interval], then the count within 15%."""
    signed = signed_errors(stats, reference)
    within = sum(abs(v) <= TARGET for v in signed.values())
    cells = " | ".join(f"{signed[k]:+.0%} [{lo:+.0%}, {hi:+.0%}]" for k, (lo, hi) in ci.items())
    return f"| {name} | {cells} | {within} / {len(signed)} | {max(map(abs, signed.values())):.0%} |"


def table(results: dict) -> str:
    """Per VAD: the statistics of both sets, then the signed errors with their intervals."""
    head = " | ".join(f"{e} N | {e} Δ" for e in ("IPU", "pause", "gap", "overlap"))
    lines = []
    for vad, sets in results["summary"].items():
        lines += [f"\n{vad} VAD, N = events per minute, Δ = seconds per minute:\n", f"| | {head} |",
                  "|" + "---|" * (1 + 2 * len(EVENTS))]  # fmt: skip
        for name, s in sets.items():
            cells = " | ".join(f"{s[e]['per_minute']:.1f} | {s[e]['seconds_per_minute']:.1f}" for e in EVENTS)
            lines.append(f"| {name} ({s['minutes']:.1f} min) | {cells} |")
        lines += ["", f"| signed error [90% interval] | {head} | within 15% | worst |",
                  "|" + "---|" * (3 + 2 * len(EVENTS)),
                  error_row(results["setting"], sets["generated"], sets[REFERENCE], results["intervals"][vad])]  # fmt: skip
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="a dgslm synth-corpus folder (manifest.tsv, wav/)")
    parser.add_argument("work", type=Path, help="output folder (units, continuations, wavs, results)")
    parser.add_argument("--setting", metavar='NAME="FLAGS"',
                        help="dgslm sample flags to use instead of dgslm generate's defaults (named NAME)")  # fmt: skip
    parser.add_argument("--model", type=Path, default=DEMO_DIR / "speech_dlm", help="SpeechDLM (default: the demo)")
    parser.add_argument("--vocoder", type=Path, default=DEMO_DIR / "hifigan", help="vocoder (default: the demo)")
    parser.add_argument("--encoder", type=Path, default=DEMO_DIR / "hubert", help="feature units folder (the demo)")
    parser.add_argument("--prompt-seconds", type=float, default=4.0)
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of continuation (and window stride)")
    parser.add_argument("--samples", type=int, default=1, help="continuations per prompt")
    parser.add_argument("--max-windows", type=int, default=0, help="only the first N windows (0: all)")
    parser.add_argument("--energy-threshold-db", type=float, default=-30.0, help="energy VAD threshold (dB)")
    parser.add_argument(
        "--vad", nargs="+", choices=VADS, default=list(VADS), help="VADs to evaluate with (default: both)"
    )
    parser.add_argument("--seed", type=int, default=123, help="sampling seed")
    parser.add_argument("--jobs", type=int, default=2, help="vocoder processes per set (default 2)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap draws")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    units = args.work / "units.code"
    encode(args.corpus, units, args.encoder)
    prompt, cont = round(args.prompt_seconds * FRAME_RATE), round(args.seconds * FRAME_RATE)
    wins = windows(units, prompt, cont, cont, args.max_windows)
    dialogues = {name: i for i, name in enumerate(dict.fromkeys(name for name, _, _ in wins))}
    source = {f"{name}_{start}": dialogues[name] for name, start, _ in wins}
    write_code_file(args.work / "prompts.code", [{"audio": f"{n}_{s}", **{c: " ".join(u[c][:prompt]) for c in CHANNELS}}
                                                 for n, s, u in wins for _ in range(args.samples)])  # fmt: skip
    truth = [{"audio": f"{n}_{s}", **{c: " ".join(u[c][prompt:]) for c in CHANNELS}} for n, s, u in wins]
    write_code_file(args.work / "truth.code", truth)

    name, flags = args.setting.split("=", 1) if args.setting else ("defaults", shlex.join(default_flags(args.model)))
    out = args.work / name
    out.mkdir(exist_ok=True)
    truth_wavs = args.work / "wav_truth"  # vocoded while the continuations are sampled
    reference = start_vocode(args.work / "truth.code", truth_wavs, args.vocoder, args.jobs)
    generated = out / "generated.code"
    if not generated.is_file():
        dgslm("sample", "--in-file", args.work / "prompts.code", "--ckpt", args.model, "--out-file", generated,
              "--max-len-b", prompt + cont, "--units-only", "--seed", args.seed, "--batch-max-tokens", 10**7,
              "--device", "cpu", *shlex.split(flags))  # fmt: skip
    records = continuations(read_code_file(generated), prompt)  # in the order of the prompts
    for i, record in enumerate(records):  # sample k of a window: "<window>_k"
        record["audio"] = f"{truth[i // args.samples]['audio']}_{i % args.samples}"
    write_code_file(out / "continuations.code", records)
    finish_vocode(start_vocode(out / "continuations.code", out / "wav", args.vocoder, args.jobs), out / "wav")
    finish_vocode(reference, truth_wavs)
    evaluated = {REFERENCE: evaluate_vads(truth_wavs, args.energy_threshold_db, args.vad),
                 "generated": evaluate_vads(out / "wav", args.energy_threshold_db, args.vad)}  # fmt: skip
    results = {"setting": name, "flags": flags, "windows": len(wins), "dialogues": len(dialogues),
               "samples": args.samples, "seconds": args.seconds, "hop": HOP, "summary": {}, "intervals": {}}  # fmt: skip
    for vad in args.vad:
        sums = {k: totals(v[vad]["dialogues"], source, len(dialogues)) for k, v in evaluated.items()}
        results["summary"][vad] = {k: v[vad]["summary"] for k, v in evaluated.items()}
        results["intervals"][vad] = bootstrap_intervals(sums["generated"], sums[REFERENCE], args.bootstrap)
        results.setdefault("errors", {})[vad] = signed_errors(results["summary"][vad]["generated"],
                                                              results["summary"][vad][REFERENCE])  # fmt: skip
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    text = f"{name} ({flags}), {len(wins)} windows of {len(dialogues)} dialogues, {args.samples} sample(s) each\n"
    text += table(results) + "\n"
    (out / "results.md").write_text(text)
    print(text)
    worst = {vad: float(np.max(np.abs(list(e.values())))) for vad, e in results["errors"].items()}
    print("worst error per VAD: " + ", ".join(f"{vad} {w:.0%}" for vad, w in worst.items()))


if __name__ == "__main__":
    main()
