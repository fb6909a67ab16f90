"""Real-time factor of the unit HiFi-GAN on the CPU (or --device), full-size generator.

Full size = the speech-resynthesis HuBERT config (upsample_initial_channel 512, rates
[5,4,4,2,2], kernels [11,8,8,4,4], resblocks [3,7,11] x dilations [1,3,5], embedding 128,
speaker table), random weights, two channels of ``--seconds`` of units.

Baseline (same run): the weight-normed training model (weight recomputed from g/v at every
call), autograd on, channels vocoded one by one. Ours: ``UnitVocoder`` (weight norm folded at
load, inference mode, both channels in one batch), in fp32 and bf16 autocast.
RTF = compute seconds / seconds of audio (lower is faster).

    python benchmarks/vocode.py [--seconds 10] [--repeats 2] [--device cpu]
"""

from __future__ import annotations

import argparse

import torch
from timing import repeated  # benchmarks/timing.py

from dgslm.vocoder.checkpoint import fold_state_dict, legacy_state_dict
from dgslm.vocoder.config import VocoderConfig
from dgslm.vocoder.generator import UnitGenerator
from dgslm.vocoder.unit_vocoder import UnitVocoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    cfg = VocoderConfig(embedding_dim=128, model_in_dim=256, multispkr="from_input_file", num_speakers=200)
    n_units = int(args.seconds * 16_000 / cfg.hop_size)
    codes = torch.randint(0, cfg.num_embeddings, (2, n_units))
    speakers = torch.tensor([0, 4])
    audio_seconds = n_units * cfg.hop_size / 16_000

    naive = UnitGenerator(cfg).apply_weight_norm().to(args.device)
    fast = UnitVocoder(UnitGenerator(cfg), args.device)
    fast.generator.load_state_dict(fold_state_dict(legacy_state_dict(naive)))  # the same weights
    fast_bf16 = UnitVocoder(fast.generator, args.device, autocast_dtype=torch.bfloat16)

    def run_naive() -> torch.Tensor:  # .cpu() also waits for the GPU, as codes2wav does
        return torch.cat(
            [naive(codes[c : c + 1].to(args.device), speakers[c : c + 1].to(args.device)).cpu() for c in range(2)]
        )

    ref = fast.codes2wav(list(codes), (0, 4))
    with torch.inference_mode():
        check = run_naive()
    print(f"max |ours - baseline| = {float((ref - check).abs().max()):.2e}")

    n_params = sum(p.numel() for p in fast.generator.parameters())
    print(f"generator: {n_params / 1e6:.2f}M parameters, {audio_seconds:.1f} s x 2 channels, device {args.device}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    results = {
        "baseline (weight norm per call, autograd, per channel)": min(repeated(run_naive, args.repeats)),
        "ours fp32 (folded, inference mode, batched)": min(
            repeated(lambda: fast.codes2wav(list(codes), (0, 4)), args.repeats)
        ),
        "ours bf16 autocast": min(repeated(lambda: fast_bf16.codes2wav(list(codes), (0, 4)), args.repeats)),
    }
    base = next(iter(results.values()))
    for name, seconds in results.items():
        print(f"{name:58s} {seconds:7.2f} s  RTF {seconds / audio_seconds:.3f}  speed-up x{base / seconds:.2f}")


if __name__ == "__main__":
    main()
