"""Speed of one SpeechDLM incremental decoding step (batch 1 by default, released config).

At batch 1 a step reads every weight once, so the floor is one product of every weight matrix
with the B*C stacked rows, done by the model's own linear modules: the ratio shows the
overhead above that floor. Each decoding dtype (``--dtypes``, see ``dgslm.lm.precision``) is a
copy of the same random model; their timings are interleaved (so that a change of machine load
hits all alike) and the medians are compared with the first dtype's.

    python benchmarks/lm_step.py [--threads 2] [--device cpu|cuda] [--batch 1] [--dtypes float32,bfloat16,int8]
                                 [--clock wall|cpu]

On a machine shared with other work, wall-clock times measure the waits for a core; ``--threads
1 --clock cpu`` times the work (memory contention still counts).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch
from torch import nn
from torch.utils.benchmark import Timer

from dgslm.lm.config import SpeechDLMConfig
from dgslm.lm.model import SpeechDLMModel
from dgslm.lm.precision import DTYPES, Int8Linear, set_decoding_dtype


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--steps", type=int, default=100, help="steps per timing")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timings of each dtype")
    parser.add_argument(
        "--clock", default="wall", choices=("wall", "cpu"),
        help="cpu: CPU seconds of the process instead of wall-clock (on a busy shared machine; use --threads 1)",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    reference = SpeechDLMModel(SpeechDLMConfig()).eval().to(device)
    tokens = torch.randint(4, 504, (args.batch, 2, 1), device=device)
    length = (args.rounds * 2 + 1) * args.steps + 64

    def timers(name: str) -> tuple:
        model = set_decoding_dtype(copy.deepcopy(reference), name)
        cache = model.make_cache(args.batch, length)
        linears = [m for m in model.modules() if isinstance(m, (nn.Linear, Int8Linear))]
        dtype = model.embed_tokens.weight.dtype
        inputs = {m.in_features: torch.randn(args.batch * 2, 1, m.in_features, device=device, dtype=dtype)
                  for m in linears}  # fmt: skip

        def step() -> None:
            model(tokens, cache=cache)

        def floor() -> None:
            for m in linears:
                m(inputs[m.in_features])

        return step, floor, cache

    def median_seconds(fn) -> float:
        if args.clock == "cpu":  # the process's CPU time: the work, not the waits for a core
            start = time.process_time()
            for _ in range(args.steps):
                fn()
            return (time.process_time() - start) / args.steps
        # torch's Timer synchronises CUDA around each block
        return Timer("fn()", globals={"fn": fn}, num_threads=args.threads).timeit(args.steps).median

    names = args.dtypes.split(",")
    runs = {name: timers(name) for name in names}
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in names}
    with torch.inference_mode():
        for step, floor, _ in runs.values():
            for _ in range(10):
                step()
                floor()
        for _ in range(args.rounds):
            for name, (step, floor, _) in runs.items():
                times[name][0].append(median_seconds(step))
                times[name][1].append(median_seconds(floor))
    base = statistics.median(times[names[0]][0])
    print(f"device={device} threads={args.threads} batch={args.batch} steps={args.steps} rounds={args.rounds} "
          f"clock={args.clock} "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    for name in names:
        step, floor = (statistics.median(t) for t in times[name])
        print(f"{name:>9}: step {step * 1e3:7.3f} ms (x{base / step:.2f} the {names[0]} step's speed), "
              f"weight-read floor {floor * 1e3:7.3f} ms (step / floor {step / floor:.2f}), "
              f"cache_len~{runs[name][2].length}")  # fmt: skip


if __name__ == "__main__":
    main()
