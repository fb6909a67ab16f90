"""dgslm side by side with the original fairseq, in one run, on the same checkpoint and data.

    python benchmarks/vs_original.py --fairseq-python V/bin/python [--threads 2] [--quick]

V is a venv with the original (about 4 minutes to make; never a dependency of dgslm):
``python3 -m venv V && V/bin/pip install torch==2.13.0 fairseq-fixed==0.12.3.1 "numpy<2" soundfile``.
The original runs as child processes of that interpreter (``V/bin/fairseq-train`` and
``benchmarks/original_side.py``); dgslm runs as ``python -m dgslm train`` children and in
this process. Every side gets ``--threads`` CPU threads.

(a) training, released SpeechDLM configuration on random-unit data (runs of 1..8 units), per
    update: a short and a longer run of each trainer, differenced to exclude start-up;
    ``fairseq-train`` vs ``dgslm train`` (fp32) and ``dgslm train --bf16``. The checkpoint of
    the original's short run is the model of (b).
(b) greedy decoding (beam 1, no sampling), ms per step (one frame of both channels): the
    original's hub at batch 1 vs ours at batch 1 and 32, with a check that the batch-1 tokens
    are the same; batch 32 is also given as units/s against the original's batch 1.
(c) HuBERT Base features of layer 12 and (d) the unit HiFi-GAN, in fp32 and bf16 autocast:
    the rows of ``vs_original_audio.py`` (same weights, ``--rounds`` interleaved rounds, medians)
    for each of ``--audio-seconds``.

``--quick`` shrinks everything (training blocks of 256 tokens, 1 vs 3 updates, 50 new units,
2 s of audio, one round) so the whole run takes a few minutes; the default is the full protocol
of issue 18 (``--max-tokens 2048 --tokens-per-sample 1024``, 2 vs 6 updates, 200 new units,
10 s and 60 s of audio, 3 rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from generate import REAL_TIME_STEPS  # benchmarks/generate.py
from timing import repeated  # benchmarks/timing.py

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
RELEASED_FLAGS = (
    "--task speech_dlm_task --channels unitA,unitB --next-unit-prediction False --edge-unit-prediction True "
    "--duration-prediction True --delayed-duration-target True --criterion speech_dlm_criterion "
    "--arch speech_dlm --decoder-cross-layers 4 --share-decoder-input-output-embed --dropout 0.1 "
    "--attention-dropout 0.1 --optimizer adam --adam-betas (0.9,0.98) --clip-norm 1.0 --lr 0.0005 "
    "--lr-scheduler inverse_sqrt --warmup-init-lr 1e-07 --warmup-updates 20000 --sample-break-mode none "
    "--seed 100501 --num-workers 0 --log-interval 1 --disable-validation --no-epoch-checkpoints"
).split()


def write_data(folder: Path, units_per_channel: int) -> None:
    """A binarised two-channel corpus of random unit runs (lines of 1000 units + eos)."""
    from dgslm.units.dictionary import Dictionary
    from dgslm.units.indexed_dataset import write_indexed_dataset

    folder.mkdir(parents=True)
    dictionary = Dictionary()
    for unit in range(500):
        dictionary.add_symbol(str(unit), n=100)
    g = torch.Generator().manual_seed(0)
    for channel in ("unitA", "unitB"):
        dictionary.save(folder / f"dict.{channel}.txt")
        for split, size in (("train", units_per_channel), ("valid", 2000)):
            stream = torch.randint(4, 504, (size,), generator=g).repeat_interleave(
                torch.randint(1, 9, (size,), generator=g)
            )[:size]
            lines = [torch.cat([chunk, torch.tensor([dictionary.eos()])]) for chunk in stream.split(1000)]
            write_indexed_dataset(folder / f"{split}.{channel}", lines, len(dictionary))


def child_env(threads: int) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_child(command: list[str], threads: int, log: Path) -> float:
    """Wall-clock seconds of a child process; its output goes to ``log`` (shown if it fails)."""
    start = time.perf_counter()
    with open(log, "w") as handle:
        done = subprocess.run(command, env=child_env(threads), stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{log.read_text()[-3000:]}")
    return time.perf_counter() - start


def original_side(fairseq_python: str, threads: int, *args: str) -> dict:
    command = [fairseq_python, str(HERE / "original_side.py"), "--threads", str(threads), *args]
    done = subprocess.run(command, env=child_env(threads), capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"original side failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def per_update(trainer: list[str], data: Path, work: Path, name: str, flags: list[str], updates: tuple[int, ...],
               threads: int) -> tuple[float, Path]:  # fmt: skip
    """Seconds per update from a short and a longer run; also the short run's save dir (holding its checkpoint)."""
    seconds = []
    for n in updates:
        save = work / f"{name}_{n}"
        command = [*trainer, str(data), *RELEASED_FLAGS, *flags, "--max-update", str(n), "--save-dir", str(save)]
        seconds.append(run_child(command, threads, work / f"{name}_{n}.log"))
        print(f"  {name}: {n} updates in {seconds[-1]:.1f} s", flush=True)
    if len(updates) == 1:
        return float("nan"), work / f"{name}_{updates[0]}"
    return (seconds[1] - seconds[0]) / (updates[1] - updates[0]), work / f"{name}_{updates[0]}"


def training(args, work: Path, data: Path, sizes: dict, timed_runs: bool) -> tuple[list[tuple], Path]:
    """Rows of (a), and the checkpoint of the original's short run (the only run unless ``timed_runs``)."""
    flags = ["--max-tokens", str(sizes["max_tokens"]), "--tokens-per-sample", str(sizes["tokens_per_sample"])]
    fairseq_train = [str(Path(args.fairseq_python).parent / "fairseq-train")]
    ours = [sys.executable, "-m", "dgslm", "train"]
    updates = sizes["updates"] if timed_runs else sizes["updates"][:1]
    original, ckpt = per_update(fairseq_train, data, work, "fairseq-train", [*flags, "--cpu"], updates, args.threads)
    if not timed_runs:
        return [], ckpt
    fp32, _ = per_update(ours, data, work, "dgslm-fp32", [*flags, "--device", "cpu"], updates, args.threads)
    bf16, _ = per_update(ours, data, work, "dgslm-bf16", [*flags, "--device", "cpu", "--bf16"], updates, args.threads)
    return [
        ("train s/update: fairseq-train fp32 / dgslm train fp32", original, fp32, original / fp32),
        ("train s/update: fairseq-train fp32 / dgslm train --bf16", original, bf16, original / bf16),
    ], ckpt


def decoding(args, ckpt: Path, data: Path, sizes: dict) -> list[tuple]:
    from dgslm.lm.hub import SpeechDLM

    n_new, n_prompt = sizes["new_units"], 15
    common = ["--prompt-units", str(n_prompt), "--new-units", str(n_new)]
    original = original_side(args.fairseq_python, args.threads, "sample", str(ckpt), str(data), *common)
    original_ms = original["seconds"] / original["steps"] * 1e3
    hub = SpeechDLM.from_pretrained(ckpt, "checkpoint_last.pt", data).eval()
    kwargs = {"beam": 1, "sampling": False, "max_len_a": 0, "max_len_b": n_prompt + n_new}
    hub.generate([hub.encode(original["prompt"])], **{**kwargs, "max_len_b": n_prompt + 5})  # warm-up
    rows = []
    for batch in (1, 32):
        prompts = [hub.encode(original["prompt"])] * batch
        out = []
        seconds = min(repeated(lambda: out.append(hub.generate(prompts, max_sentences=batch, **kwargs)), 1))
        hypo = out[-1][0][0]
        steps = len(hypo["tokens"]["unitA"])
        if batch == 1:
            same = {ch: t.tolist() for ch, t in hypo["tokens"].items()} == original["tokens"]
            print(
                f"  greedy batch 1: {steps} steps, tokens {'the same as' if same else 'DIFFERENT from'} the original's"
            )
        ms = seconds / steps * 1e3
        rows.append((f"greedy ms/step, batch {batch} (original batch 1)", original_ms, ms, original_ms / ms))
        if batch == 32:
            units, base = batch / ms * 1e3, 1e3 / original_ms
            rows.append(("greedy units/s: original batch 1 / ours batch 32", base, units, units / base))
    print(f"  real time = {1e3 / REAL_TIME_STEPS:.0f} ms/step")
    return rows


def main() -> None:
    from vs_original_audio import audio_rows  # benchmarks/vs_original_audio.py (which imports this module)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fairseq-python", required=True, help="an interpreter whose environment has fairseq")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes in all")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: train,decode,hubert,vocoder")
    parser.add_argument("--audio-seconds", type=float, nargs="+", help="audio lengths for HuBERT and the vocoder")
    parser.add_argument("--rounds", type=int, help="interleaved rounds for HuBERT and the vocoder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = (
        {"max_tokens": 512, "tokens_per_sample": 256, "updates": (1, 3), "new_units": 50, "audio_seconds": [2.0], "rounds": 1}
        if args.quick
        else {"max_tokens": 2048, "tokens_per_sample": 1024, "updates": (2, 6), "new_units": 200,
              "audio_seconds": [10.0, 60.0], "rounds": 3}
    )  # fmt: skip
    sizes["audio_seconds"] = args.audio_seconds or sizes["audio_seconds"]
    sizes["rounds"] = args.rounds or sizes["rounds"]
    skip = set(filter(None, args.skip.split(",")))
    print(f"{'quick' if args.quick else 'full'} protocol, {args.threads} threads, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    print(f"{'measure':58s} {'original':>9s} {'dgslm':>9s} {'speed-up':>8s}")
    with tempfile.TemporaryDirectory(prefix="vs_original_") as tmp:
        work, data = Path(tmp), Path(tmp) / "data-bin"
        write_data(data, sizes["max_tokens"] * (sizes["updates"][1] + 1) + 2000)
        print("(a) training" + (" (the original's short run only, for its checkpoint)" if "train" in skip else ""))
        rows, ckpt = training(args, work, data, sizes, "train" not in skip)
        show(rows)
        if "decode" not in skip:
            print("(decode)", flush=True)
            show(decoding(args, ckpt, data, sizes))
        print("(hubert, vocoder)", flush=True)
        show(audio_rows(args.fairseq_python, args.threads, sizes["audio_seconds"], sizes["rounds"], skip, work))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


def show(rows: list[tuple]) -> None:
    for name, original, ours, ratio in rows:
        print(f"{name:58s} {original:9.3f} {ours:9.3f} {ratio:7.2f}x", flush=True)


if __name__ == "__main__":
    main()
