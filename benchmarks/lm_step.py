"""Speed of one SpeechDLM incremental decoding step (batch 1 by default, released config).

At batch 1 a step reads every weight once, so the baseline is one matrix-vector product per
weight matrix (both channels stacked): the ratio shows the overhead above that floor.

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
    cache = model.make_cache(args.batch, args.steps * 3 + 40)

    def step() -> None:
        model(tokens, cache=cache)

    weights = [p for p in model.parameters() if p.dim() == 2]
    inputs = {p.shape[1]: torch.randn(args.batch * 2, p.shape[1], device=device, dtype=dtype) for p in weights}

    def baseline() -> None:
        for p in weights:
            F.linear(inputs[p.shape[1]], p)

    def median_seconds(fn) -> float:  # torch's Timer synchronises CUDA around each block
        return Timer("fn()", globals={"fn": fn}, num_threads=args.threads).timeit(args.steps).median

    with torch.inference_mode():
        for _ in range(20):
            step()
            baseline()
        ours = median_seconds(step)
        floor = median_seconds(baseline)
    print(f"device={device} threads={args.threads} batch={args.batch} dtype={args.dtype} "
          f"cache_len~{cache.length}: step {ours * 1e3:.3f} ms, weight-read floor {floor * 1e3:.3f} ms, "
          f"ratio {ours / floor:.2f}")


if __name__ == "__main__":
    main()
