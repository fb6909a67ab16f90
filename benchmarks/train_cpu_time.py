"""CPU seconds per update of ``fairseq-train`` and ``dgslm train`` (fp32 and ``--bf16``), each
trainer's own update step timed in its own process, on ``vs_original.py``'s data and flags.

    python benchmarks/train_cpu_time.py --fairseq-python V/bin/python [--updates 6] [--threads 1]

Each trainer runs as a child (``taskset -c 1 python benchmarks/train_cpu_time.py ...`` pins
them all) and reports the process CPU time (user + system) of every update; the table gives the
median of the updates after the first two (start-up, first allocations). CPU time, unlike the
wall clock of ``vs_original.py``, is not inflated by other processes on a shared core, so the
ratios hold on a busy machine; with several threads it adds up their time and is then not a
measure of the wall clock.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRAINERS = {
    "fairseq-train": ["--cpu"],
    "dgslm train": ["--device", "cpu"],
    "dgslm train --bf16": ["--device", "cpu", "--bf16"],
}


def timed(step):
    """``step`` wrapped to print the CPU seconds of every call (one JSON line each)."""

    def run(*args, **kwargs):
        start = resource.getrusage(resource.RUSAGE_SELF)
        out = step(*args, **kwargs)
        end = resource.getrusage(resource.RUSAGE_SELF)
        cpu = end.ru_utime - start.ru_utime + end.ru_stime - start.ru_stime
        print(json.dumps({"update_cpu_seconds": cpu}), flush=True)
        return out

    return run


def child(side: str, args: list[str]) -> None:
    """Run one trainer in this process with its update step timed."""
    if side == "fairseq":
        import fairseq.trainer
        from fairseq_cli.train import cli_main

        fairseq.trainer.Trainer.train_step = timed(fairseq.trainer.Trainer.train_step)
        sys.argv = ["fairseq-train", *args]
        cli_main()
    else:
        from dgslm.cli.main import main
        from dgslm.lm import trainer

        trainer.Trainer._step = timed(trainer.Trainer._step)
        main(["train", *args])


def main() -> None:
    from vs_original import RELEASED_FLAGS, child_env, write_data  # benchmarks/vs_original.py

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fairseq-python", required=True, help="an interpreter whose environment has fairseq")
    parser.add_argument("--updates", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=2048)
    parser.add_argument("--tokens-per-sample", type=int, default=1024)
    args = parser.parse_args()
    sizes = ["--max-tokens", str(args.max_tokens), "--tokens-per-sample", str(args.tokens_per_sample)]
    print(f"{args.updates} updates, {args.threads} threads, {' '.join(sizes)}; CPU s/update (median of updates 3..)")
    with tempfile.TemporaryDirectory(prefix="train_cpu_time_") as tmp:
        data = Path(tmp) / "data-bin"
        write_data(data, args.max_tokens * (args.updates + 1) + 2000)
        medians = {}
        for name, extra in TRAINERS.items():
            python, side = (args.fairseq_python, "fairseq") if name == "fairseq-train" else (sys.executable, "dgslm")
            command = [python, __file__, "--child", side, str(data), *RELEASED_FLAGS, "--no-save", *sizes, *extra,
                       "--max-update", str(args.updates), "--save-dir", str(Path(tmp) / "save")]  # fmt: skip
            start = time.perf_counter()
            done = subprocess.run(command, env=child_env(args.threads), capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{name} failed:\n{done.stderr[-3000:]}")
            times = [
                json.loads(line)["update_cpu_seconds"] for line in done.stdout.splitlines() if "update_cpu" in line
            ]
            medians[name] = statistics.median(times[2:] or times)
            ratio = medians["fairseq-train"] / medians[name]
            print(f"  {name:20s} {medians[name]:7.2f} ({ratio:.2f}x)   updates: {' '.join(f'{t:.2f}' for t in times)}"
                  f"   [{time.perf_counter() - start:.0f} s wall]", flush=True)  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":  # threads: OMP_NUM_THREADS, set by the parent
        child(sys.argv[2], sys.argv[3:])
    else:
        main()
