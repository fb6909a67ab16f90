"""HuBERT Base and the unit HiFi-GAN side by side with the original, interleaved rounds, medians.

    python benchmarks/vs_original_audio.py --fairseq-python V/bin/python [--threads 2] \
        [--seconds 10 60] [--rounds 3] [--skip hubert,vocoder]

(V: the venv with the original, see ``vs_original.py``, which runs these rows too.) Each round
times the original first, in a child process of V/bin/python (``original_side.py``: build, one
warm-up pass, one timed pass), then dgslm in this process, in fp32 and in bf16 autocast (one
timed pass each, warmed up in the first round). A row gives the medians over the rounds and the
ratio of the medians; the rounds' own times and the load average are printed too, as the
machine may be shared.

Each row also gives the work of one pass (GFLOP, counted by ``torch.utils.flop_counter`` on the
plain torch ops: the fused oneDNN ops are invisible to it and run the same products) and the
rate each side reaches, against the fp32 and bf16 matrix-product rates of this CPU at the same
threads (``timing.matmul_gflops``): how far either implementation is from the hardware's
ceiling, and so the largest fp32 speed-up over the original that any implementation could reach.

- HuBERT Base to layer 12: fairseq ``HubertModel.extract_features(output_layer=12)`` vs
  ``Hubert.extract_features(wave, 12)``, on the **same** random weights (saved by the original
  side in round 1, converted by ``dgslm.encoder.hubert_checkpoint.convert_state_dict``) and the
  same noise; the largest feature difference to the original is printed (fp32 and bf16).
- The unit HiFi-GAN: ``CodeHiFiGANVocoder`` (two channels one by one, as it is called) vs
  ``UnitVocoder.codes2wav`` (both channels), same random checkpoint and units; the largest
  sample difference is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from timing import matmul_gflops, timed  # benchmarks/timing.py
from torch.utils.flop_counter import FlopCounterMode
from vs_original import original_side, show  # benchmarks/vs_original.py

Row = tuple[str, float, float, float]


def interleaved(
    name: str, original: Callable[[], float], setup: Callable[[], dict[str, Callable[[], object]]], rounds: int
) -> list[Row]:
    """``rounds`` rounds of the original (``original()`` -> seconds) then each of dgslm's runs,
    given by ``setup()`` after the original's first round (whose files it may read); one row per
    run: (label, median original, median ours, ratio of the medians)."""
    times: dict[str, list[float]] = {"original": []}
    runs: dict[str, Callable[[], object]] = {}
    for r in range(rounds):
        times["original"].append(original())
        runs = runs or setup()
        for label, run in runs.items():
            times.setdefault(label, []).append(timed(run)[1])
        line = "  ".join(f"{label} {t[-1]:.2f}" for label, t in times.items())
        print(f"  {name} round {r + 1}: {line} s (load average {os.getloadavg()[0]:.1f})", flush=True)
    base = statistics.median(times["original"])
    return [(f"{name}, dgslm {label} (s)", base, statistics.median(times[label]),
             base / statistics.median(times[label])) for label in runs]  # fmt: skip


def gflop(run: Callable[[], object]) -> float:
    """GFLOP of one ``run()``, counted on the plain torch ops (see the module docstring)."""
    from dgslm import onednn

    fused, onednn._HAVE_OPS = onednn._HAVE_OPS, False
    try:
        with FlopCounterMode(display=False) as counter:
            run()
    finally:
        onednn._HAVE_OPS = fused
    return counter.get_total_flops() / 1e9


def rates(rows: list[Row], work: float, ceilings: dict[str, float]) -> None:
    """Print the GFLOP/s of both sides of each row (one pass = ``work`` GFLOP) against ``ceilings``."""
    for label, original, ours, _ in rows:
        print(
            f"  {label}: {work:.1f} GFLOP a pass; original {work / original:.0f} GFLOP/s, dgslm "
            f"{work / ours:.0f} GFLOP/s; matrix-product ceilings "
            + ", ".join(f"{d} {c:.0f}" for d, c in ceilings.items())
            + f" GFLOP/s (an fp32 pass can be at most {ceilings['fp32'] / (work / original):.2f}x the original's)"
        )


def checked(runs: dict[str, Callable[[], torch.Tensor]], reference: torch.Tensor, what: str) -> dict:
    """``runs`` (their warm-up), after printing each one's largest difference to ``reference``."""
    for label, run in runs.items():
        print(f"  {what}, {label}: max |dgslm - original| = {float((run().float() - reference).abs().max()):.2e}")
    return runs


def hubert(fairseq_python: str, threads: int, seconds: float, rounds: int, work: Path) -> list[Row]:
    from dgslm.encoder.features import HubertFeatures
    from dgslm.encoder.hubert import Hubert, HubertConfig
    from dgslm.encoder.hubert_checkpoint import convert_state_dict

    folder = work / f"hubert_{seconds:g}"

    def original() -> float:
        save = [] if folder.exists() else ["--save", str(folder)]
        return original_side(fairseq_python, threads, "hubert", "--seconds", str(seconds), *save)["seconds"]

    def setup() -> dict:
        model = Hubert(HubertConfig()).eval()
        model.load_state_dict(convert_state_dict(torch.load(folder / "weights.pt")))
        wave = torch.load(folder / "wave.pt")
        bf16 = HubertFeatures(model, 12, autocast_dtype=torch.bfloat16)  # what `dgslm encode --autocast bf16` runs
        runs = {"fp32": lambda: model.extract_features(wave, 12), "bf16 autocast": lambda: bf16(wave)}
        return checked(runs, torch.load(folder / "features.pt"), f"HuBERT {seconds:g} s")

    rows = interleaved(f"HuBERT Base layer 12, {seconds:g} s audio", original, setup, rounds)
    model = Hubert(HubertConfig()).eval()
    rates(rows, gflop(lambda: model.extract_features(torch.load(folder / "wave.pt"), 12)), ceilings())
    return rows


def vocoder(fairseq_python: str, threads: int, seconds: float, rounds: int, work: Path) -> list[Row]:
    from dgslm.vocoder.unit_vocoder import UnitVocoder

    folder = work / f"vocoder_{seconds:g}"

    def original() -> float:
        return original_side(fairseq_python, threads, "vocoder", str(folder), "--seconds", str(seconds))["seconds"]

    def setup() -> dict:
        fp32 = UnitVocoder.from_pretrained(folder / "g_00000000", folder / "config.json")
        bf16 = UnitVocoder(fp32.generator, autocast_dtype=torch.bfloat16)  # codes2wav sets its own autocast
        codes = list(torch.load(folder / "codes.pt"))
        runs = {"fp32": lambda: fp32.codes2wav(codes, (0, 0)), "bf16 autocast": lambda: bf16.codes2wav(codes, (0, 0))}
        return checked(runs, torch.load(folder / "original_wave.pt"), f"vocoder {seconds:g} s (16-bit step 3.1e-05)")

    rows = interleaved(f"unit HiFi-GAN, 2 x {seconds:g} s", original, setup, rounds)
    fp32 = UnitVocoder.from_pretrained(folder / "g_00000000", folder / "config.json")
    rates(rows, gflop(lambda: fp32.codes2wav(list(torch.load(folder / "codes.pt")), (0, 0))), ceilings())
    return rows


def ceilings() -> dict[str, float]:
    """This CPU's fp32 and bf16 matrix-product GFLOP/s at the current threads."""
    return {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}


def audio_rows(fairseq_python: str, threads: int, seconds: list[float], rounds: int, skip: set[str],
               work: Path) -> list[Row]:  # fmt: skip
    """The HuBERT and vocoder rows (each unless in ``skip``) for every length in ``seconds``."""
    rows = []
    for name, part in (("hubert", hubert), ("vocoder", vocoder)):
        if name not in skip:
            for s in seconds:
                rows += part(fairseq_python, threads, s, rounds, work)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fairseq-python", required=True, help="an interpreter whose environment has fairseq")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0], help="audio lengths")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: hubert,vocoder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.threads} threads, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="vs_original_audio_") as tmp:
        rows = audio_rows(args.fairseq_python, args.threads, args.seconds, args.rounds,
                          set(filter(None, args.skip.split(","))), Path(tmp))  # fmt: skip
    print(f"{'measure (medians)':58s} {'original':>9s} {'dgslm':>9s} {'speed-up':>8s}")
    show(rows)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
