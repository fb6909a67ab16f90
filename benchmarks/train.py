"""Training throughput of the released SpeechDLM configuration (tokens per second).

One step = forward + criterion (edge CE + delayed duration L1) + backward + gradient scaling
and clipping + Adam (the trainer's: ``dgslm.training.optim``), on a batch of ``--batch`` x 2
channels x ``--tokens`` units (``--batch 2``: one update of ``--max-tokens 2048``). Variants,
in the same process:

- ``naive-attn fp32``: baseline, attention written out (scores, mask, softmax, weighted sum),
  as the original's non-fused path computes it;
- ``fp32`` and ``bf16``: ours (``dgslm.lm.attention`` on CPUs, where dropout rules out SDPA's
  fused kernels; fused SDPA on GPUs), bf16 under autocast.

Also prints the eval forward time of 1 x 2 x 1024 next to the original's (``timing.json``:
0.64 s released / 0.78 s all-cross on 2 threads, fairseq on CPU).

    python benchmarks/train.py [--threads 2] [--device cpu|cuda] [--tokens 1024] [--steps 3]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F
from timing import repeated  # benchmarks/timing.py

from dgslm.lm import model as model_module
from dgslm.lm.config import CriterionConfig, SpeechDLMConfig
from dgslm.lm.criterion import SpeechDLMCriterion
from dgslm.lm.dataset import collate
from dgslm.lm.model import SpeechDLMModel
from dgslm.lm.targets import run_targets
from dgslm.training import optim


def naive_attend(self, q, k, v, mask, is_causal):
    """Attention without the fused kernel (the baseline)."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if is_causal:
        mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = F.dropout(scores.float().softmax(-1).type_as(scores), self.dropout, self.training)
    return self.out_proj((probs @ v).transpose(1, 2).flatten(2))


def make_batch(batch: int, tokens: int, device: torch.device) -> dict:
    """Random unit runs (lengths 1..8) in both channels, with their edge/duration targets."""
    g = torch.Generator().manual_seed(0)
    items = []
    for i in range(batch):
        item = {"id": i, "source": [], "next": [], "edge": [], "duration": [], "edge_indices": []}
        for _ in range(2):
            units = torch.randint(4, 504, (tokens,), generator=g)
            runs = torch.randint(1, 9, (tokens,), generator=g)
            stream = units.repeat_interleave(runs)[: tokens + 1]
            target = stream[1:]
            r = run_targets(target, None, pad=1)
            for key, value in (("source", stream[:-1]), ("next", target), ("edge", r.edge),
                               ("duration", r.duration), ("edge_indices", r.edge_indices)):  # fmt: skip
                item[key].append(value)
        items.append(item)
    out = collate(items)
    move = lambda x: x.to(device) if isinstance(x, torch.Tensor) else [t.to(device) for t in x]  # noqa: E731
    return {**out, "src_tokens": out["src_tokens"].to(device), "target": {k: move(v) for k, v in out["target"].items()}}


def train_tokens_per_second(model, batch, dtype, steps: int, device: torch.device) -> float:
    criterion = SpeechDLMCriterion(CriterionConfig(), model.cfg)
    optimizer = optim.adam(model.parameters(), 1e-5, (0.9, 0.98), 1e-8, 0.0)
    model.train()

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            output = model(batch["src_tokens"])
        loss, sample_size, _ = criterion(output, batch)
        loss.backward()
        optim.scale_and_clip_grads_(model.parameters(), 1 / sample_size, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up
    times = repeated(step, steps, device)
    return batch["src_tokens"].numel() / sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = SpeechDLMModel(SpeechDLMConfig(checkpoint_activations=False)).to(device)
    batch = make_batch(args.batch, args.tokens, device)

    with torch.inference_mode():
        model.eval()
        model(batch["src_tokens"])
        start = time.perf_counter()
        model(batch["src_tokens"])
        forward = time.perf_counter() - start
    print(f"device={device} threads={args.threads} batch={args.batch}x2x{args.tokens}")
    print(f"eval forward: {forward:.3f} s (original, timing.json: 0.636 s released config)")

    fused = model_module.MultiheadAttention.attend
    model_module.MultiheadAttention.attend = naive_attend
    try:
        baseline = train_tokens_per_second(model, batch, None, args.steps, device)
    finally:
        model_module.MultiheadAttention.attend = fused
    results = {"naive-attn fp32 (baseline)": baseline}
    results["fp32"] = train_tokens_per_second(model, batch, None, args.steps, device)
    results["bf16 autocast"] = train_tokens_per_second(model, batch, torch.bfloat16, args.steps, device)
    for name, tps in results.items():
        print(
            f"{name:28s} {tps:9.1f} tokens/s  x{tps / baseline:.2f} vs baseline  x{tps / results['fp32']:.2f} vs fp32"
        )


if __name__ == "__main__":
    main()
