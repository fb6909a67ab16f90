"""Generation speed of the released SpeechDLM configuration (random weights).

Decoder steps per second with the KV cache at batch 1 and 32, float32, bfloat16 and int8 weights
(``dgslm.lm.precision``; the runs interleaved, medians), against
(a) a no-cache baseline run in the same process (the whole prefix recomputed every step,
batch 1, fp32), (b) the real-time budget of 50 steps/s (20 ms units) and (c) the original's
20.22 ms/step (reference timing.json: fp32, batch 1, 2 CPU threads).

    python benchmarks/generate.py [--device cpu] [--threads 2] [--new-units 200] [--dtypes float32,bfloat16,int8]
                                  [--batches 1,32] [--repeats 3] [--context-window N]

With ``--context-window N`` it also times batch-1 fp32 decoding that attends to at most N
positions (the cache rebuilt from the last N/2 whenever full) against whole-context decoding.

A step is one output frame of every channel (the original's definition: a 15-unit prompt
plus 200 new units is 216 steps).
"""

from __future__ import annotations

import argparse
import copy
import functools
import itertools
import json
import os
import statistics
from pathlib import Path

import torch
from timing import timed  # benchmarks/timing.py

from dgslm.lm.config import SpeechDLMConfig
from dgslm.lm.generate import GenerationConfig, generate_batch
from dgslm.lm.model import SpeechDLMModel
from dgslm.lm.precision import set_decoding_dtype
from dgslm.units.dictionary import Dictionary

REAL_TIME_STEPS = 50.0  # 50 Hz units
TIMING = Path(__file__).resolve().parents[1] / "tests" / "reference" / "speechdlm" / "timing.json"


def original_ms_per_step() -> float | None:
    if not TIMING.is_file():
        return None
    runs = {run["variant"]: run for run in json.loads(TIMING.read_text())}
    return runs["released"]["greedy_generation"]["ms_per_step"]


@torch.inference_mode()
def no_cache_greedy(model: SpeechDLMModel, prompts: torch.Tensor, steps: int) -> None:
    """The baseline: every step runs the full forward on the whole prefix."""
    tokens = torch.cat([torch.full_like(prompts[:, :, :1], 2), prompts], dim=2)
    for _ in range(steps):
        logits = model(tokens).logits[:, :, 0, -1]
        tokens = torch.cat([tokens, logits.argmax(-1, keepdim=True)], dim=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--prompt-units", type=int, default=15)
    parser.add_argument("--new-units", type=int, default=200)
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--dtypes", default="float32,bfloat16,int8", help="decoding dtypes (dgslm.lm.precision)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each dtype and batch")
    parser.add_argument("--context-window", type=int, default=0, help="also time decoding with this window")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = SpeechDLMModel(SpeechDLMConfig()).eval().to(device)
    dictionary = Dictionary()
    for unit in range(500):
        dictionary.add_symbol(str(unit))
    steps = args.prompt_units + args.new_units + 1
    config = GenerationConfig(max_len_b=args.prompt_units + args.new_units, sampling=True, beam=1)
    print(f"{model.num_parameters() / 1e6:.1f}M parameters, {device}, {torch.get_num_threads()} threads, "
          f"{args.prompt_units}-unit prompt + {args.new_units} new units = {steps} steps")  # fmt: skip

    prompt1 = torch.randint(4, 504, (1, 2, args.prompt_units), device=device)
    generate_batch(model, prompt1, GenerationConfig(max_len_b=20, beam=1), dictionary)  # warm-up
    baseline = timed(lambda: no_cache_greedy(model, prompt1, steps), device)[1] / steps
    original = original_ms_per_step()
    print(f"no-cache baseline (fp32, batch 1): {baseline * 1e3:.2f} ms/step")
    if original:
        print(f"original (timing.json, fp32, batch 1): {original:.2f} ms/step")
    names = args.dtypes.split(",")
    models = {name: set_decoding_dtype(copy.deepcopy(model), name) for name in names}
    batches = [int(b) for b in args.batches.split(",")]
    runs = {}
    for name, batch in itertools.product(names, batches):
        prompts = torch.randint(4, 504, (batch, 2, args.prompt_units), device=device)
        generate_batch(models[name], prompts, GenerationConfig(max_len_b=20, beam=1), dictionary)  # warm-up
        runs[name, batch] = functools.partial(generate_batch, models[name], prompts, config, dictionary)
    times = {key: [] for key in runs}
    for _ in range(args.repeats):  # interleaved, so that a change of machine load hits every run alike
        for key, run in runs.items():
            times[key].append(timed(run, device)[1] / steps)
    print(f"median of {args.repeats} interleaved runs each, load average {os.getloadavg()[0]:.1f}")
    print(f"{'dtype':>9} {'batch':>5} {'ms/step':>8} {'steps/s':>8} {'units/s':>8} {'x real time':>11} "
          f"{'x no-cache':>10} {'x ' + names[0]:>10} {'x original units/s':>18}")  # fmt: skip
    for (name, batch), seconds in times.items():
        per_step = statistics.median(seconds)
        units_per_s = batch / per_step
        versus_first = statistics.median(times[names[0], batch]) / per_step
        versus_original = f"{units_per_s / (1e3 / original):18.1f}" if original else f"{'-':>18}"
        print(f"{name:>9} {batch:5d} {per_step * 1e3:8.2f} {1 / per_step:8.1f} {units_per_s:8.0f} "
              f"{1 / per_step / REAL_TIME_STEPS:11.2f} {baseline / per_step:10.1f} {versus_first:10.2f} "
              f"{versus_original}")  # fmt: skip
    if args.context_window:
        windowed = GenerationConfig(max_len_b=config.max_len_b, beam=1, context_window=args.context_window)
        whole = timed(lambda: generate_batch(model, prompt1, config, dictionary), device)[1] / steps
        window = timed(lambda: generate_batch(model, prompt1, windowed, dictionary), device)[1] / steps
        print(
            f"context window {args.context_window} (fp32, batch 1): {window * 1e3:.2f} ms/step, "
            f"{whole / window:.2f}x the speed of whole-context decoding ({whole * 1e3:.2f} ms/step)"
        )


if __name__ == "__main__":
    main()
