"""Speed of one SpeechDLM incremental decoding step (batch 1 by default, released config).

At batch 1 a step reads every weight once, so the floor is one product of every weight matrix
with the B*C stacked rows, done by the model's own ``Linear`` modules: the ratio shows the
overhead above that floor. The same products with plain ``F.linear`` (what the model used
before its small-row path) are timed alongside for comparison.

    python benchmarks/lm_step.py [--threads 2] [--device cpu|cuda] [--batch 1] [--dtype float32]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.utils.benchmark import Timer

from dgslm.lm.config import SpeechDLMConfig
from dgslm.lm.model import SpeechDLMModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    model = SpeechDLMModel(SpeechDLMConfig()).eval().to(device, dtype)
    tokens = torch.randint(4, 504, (args.batch, 2, 1), device=device)
    cache = model.make_cache(args.batch, args.steps * 8 + 40)

    def step() -> None:
        model(tokens, cache=cache)

    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    inputs = {m.in_features: torch.randn(args.batch * 2, 1, m.in_features, device=device, dtype=dtype) for m in linears}

    def baseline() -> None:
        for m in linears:
            m(inputs[m.in_features])

    def plain_baseline() -> None:
        for m in linears:
            F.linear(inputs[m.in_features], m.weight, m.bias)

    def median_seconds(fn) -> float:  # torch's Timer synchronises CUDA around each block
        return Timer("fn()", globals={"fn": fn}, num_threads=args.threads).timeit(args.steps).median

    with torch.inference_mode():
        for _ in range(20):
            step()
            baseline()
        ours, floor, plain = [], [], []
        for _ in range(3):  # alternate, so that a change of machine load hits all three alike
            ours.append(median_seconds(step))
            floor.append(median_seconds(baseline))
            plain.append(median_seconds(plain_baseline))
        ours, floor, plain = (sorted(t)[1] for t in (ours, floor, plain))
    print(
        f"device={device} threads={args.threads} batch={args.batch} dtype={args.dtype} "
        f"cache_len~{cache.length}: step {ours * 1e3:.3f} ms, weight-read floor {floor * 1e3:.3f} ms "
        f"(ratio {ours / floor:.2f}); same products with plain F.linear {plain * 1e3:.3f} ms "
        f"(x{plain / floor:.2f} the model's)"
    )


if __name__ == "__main__":
    main()
