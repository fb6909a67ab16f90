"""Real-time factor of speech-to-units: HuBERT-base-size features of layer 12 + k-means (500).

HuBERT base layout (12 post-norm layers, width 768, conv extractor 512), random weights, one
channel of ``--seconds`` of noise; k-means with 500 random centres.

Baseline (same run): the same model with a naive attention (explicit fp32 score matrix and
softmax, as fairseq's MultiheadAttention) and autograd on, then a numpy distance matrix.
Ours: ``Hubert.extract_features`` (fused scaled-dot-product attention, inference mode) and the
torch ``KMeansQuantizer``, in fp32 and in bf16 autocast. RTF = compute s / audio s (lower is faster).

    python benchmarks/encode.py [--seconds 10 60] [--repeats 1] [--device cpu]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from timing import repeated  # benchmarks/timing.py

from dgslm.encoder.features import HubertFeatures
from dgslm.encoder.hubert import Hubert, HubertConfig, SelfAttention
from dgslm.encoder.kmeans import KMeansQuantizer


def naive_attention(self: SelfAttention, x: torch.Tensor) -> torch.Tensor:
    B, T, D = x.shape
    head = D // self.heads
    q, k, v = (p(x).view(B, T, self.heads, head).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
    weights = F.softmax((q * head**-0.5) @ k.transpose(-1, -2), dim=-1, dtype=torch.float32).type_as(q)
    return self.out_proj((weights @ v).transpose(1, 2).reshape(B, T, D))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = Hubert(HubertConfig()).to(args.device).eval()
    centers = torch.randn(500, 768)
    quantizer = KMeansQuantizer(centers).to(args.device)
    fp32 = HubertFeatures(model, layer=12)
    bf16 = HubertFeatures(model, layer=12, autocast_dtype=torch.bfloat16)
    c_np = centers.numpy()

    def baseline(wave: torch.Tensor) -> np.ndarray:
        original = SelfAttention.forward
        SelfAttention.forward = naive_attention
        try:
            with torch.enable_grad():
                feats = model(model.normalize_wave(wave), 12)[0].detach().cpu().numpy()
        finally:
            SelfAttention.forward = original
        dist = (feats**2).sum(1, keepdims=True) - 2 * feats @ c_np.T + (c_np**2).sum(1)[None]
        return dist.argmin(1)

    print(f"HuBERT base: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, layer 12 + k-means 500, "
          f"device {args.device}, {torch.get_num_threads()} threads")  # fmt: skip
    for seconds in args.seconds:
        wave = (0.1 * torch.randn(1, int(seconds * 16_000))).to(args.device)
        units = quantizer(fp32(wave))
        agree = (units.cpu().numpy()[0] == baseline(wave)).mean()
        agree_bf16 = (quantizer(bf16(wave)) == units).float().mean().item()
        print(
            f"{seconds:.0f} s: {units.shape[-1]} frames; baseline units agree {agree:.1%}, bf16 units agree {agree_bf16:.1%}"
        )
        results = {
            "baseline (naive attention, autograd, numpy k-means)": min(repeated(lambda: baseline(wave), args.repeats)),
            "ours fp32 (SDPA, inference mode, torch k-means)": min(
                repeated(lambda: quantizer(fp32(wave)), args.repeats)
            ),
            "ours bf16 autocast": min(repeated(lambda: quantizer(bf16(wave)), args.repeats)),
        }
        base = next(iter(results.values()))
        for name, took in results.items():
            print(f"  {name:54s} {took:7.2f} s  RTF {took / seconds:.3f}  speed-up x{base / took:.2f}")


if __name__ == "__main__":
    main()
