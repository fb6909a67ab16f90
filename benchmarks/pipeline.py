"""End-to-end real-time factor of ``dgslm generate`` with base-size models (random weights).

Models: HuBERT base (12 layers, 768 wide, 512-channel conv extractor) to layer 12 + a 500-unit
k-means; SpeechDLM with the released configuration (6 layers, 4 cross, 512 wide, 504 ids);
the full-size unit HiFi-GAN (upsample_initial_channel 512, rates [5,4,4,2,2], kernels
[11,8,8,4,4], resblocks [3,7,11] x dilations [1,3,5], speaker table). Workload: a stereo
``--prompt-seconds`` prompt continued by ``--seconds`` (sampling, ``--beam-size`` samples per
output as the CLI default), prompt + continuation vocoded.

Prints seconds per stage (encode, continue, vocode), which stage dominates, and
RTF = compute seconds / seconds of output audio (lower is faster). Baseline in the same run:
the SpeechDLM decoding without the KV cache (every step re-runs the whole sequence), timed on
``--naive-steps`` forwards at the mid length and extrapolated to all steps.

    python benchmarks/pipeline.py [--prompt-seconds 10] [--seconds 10] [--device cpu] [--beam-size 5]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from timing import timed  # benchmarks/timing.py

from dgslm.audio import FRAME_RATE
from dgslm.encoder.features import HubertFeatures
from dgslm.encoder.hubert import Hubert, HubertConfig
from dgslm.encoder.kmeans import KMeansQuantizer
from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.lm.config import SpeechDLMConfig
from dgslm.lm.hub import SpeechDLM
from dgslm.lm.model import SpeechDLMModel
from dgslm.pipeline.dialogue import DialoguePipeline
from dgslm.units.dictionary import Dictionary
from dgslm.vocoder.config import VocoderConfig
from dgslm.vocoder.generator import UnitGenerator
from dgslm.vocoder.unit_vocoder import UnitVocoder


def base_pipeline(device: torch.device) -> DialoguePipeline:
    torch.manual_seed(0)
    hubert = Hubert(HubertConfig()).to(device).eval()
    encoder = UnitEncoder(HubertFeatures(hubert, layer=12), KMeansQuantizer(torch.randn(500, 768)), device)
    units = Dictionary()
    for unit in range(500):
        units.add_symbol(str(unit))
    lm = SpeechDLM(SpeechDLMModel(SpeechDLMConfig()), {"unitA": units, "unitB": units})
    vocoder_cfg = VocoderConfig(embedding_dim=128, model_in_dim=256, multispkr="from_input_file", num_speakers=200)
    return DialoguePipeline(encoder, lm.to(device), UnitVocoder(UnitGenerator(vocoder_cfg), device))


def run(pipe: DialoguePipeline, wave: np.ndarray, seconds: float, beam: int, device: torch.device) -> dict:
    units, t_encode = timed(lambda: pipe.encode(wave), device)
    frames = round(seconds * FRAME_RATE)
    (out,), t_lm = timed(lambda: pipe.continue_units(units, frames, seed=0, beam=beam), device)
    audio, t_vocode = timed(lambda: pipe.vocode(out), device)
    return {"encode": t_encode, "continue": t_lm, "vocode": t_vocode, "audio_s": len(audio) / pipe.sample_rate,
            "prompt_frames": len(units["unitA"].split()), "frames": frames}  # fmt: skip


@torch.inference_mode()
def naive_step_seconds(pipe: DialoguePipeline, length: int, beam: int, steps: int, device: torch.device) -> float:
    """One decoding step without the KV cache: a full forward over ``length`` positions."""
    tokens = torch.randint(4, 504, (beam, 2, length), device=device)
    pipe.lm.model(tokens[:, :, :8])  # warm-up
    _, seconds = timed(lambda: [pipe.lm.model(tokens) for _ in range(steps)], device)
    return seconds / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt-seconds", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--naive-steps", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)

    pipe = base_pipeline(device)
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal((round(args.prompt_seconds * 16000), 2))).astype(np.float32)
    run(pipe, wave[:8000], 0.04, args.beam_size, device)  # warm-up
    r = run(pipe, wave, args.seconds, args.beam_size, device)
    total = r["encode"] + r["continue"] + r["vocode"]
    print(f"device {device} ({torch.get_num_threads()} threads), prompt {args.prompt_seconds:g} s "
          f"({r['prompt_frames']} frames) + {args.seconds:g} s ({r['frames']} frames), beam {args.beam_size}, "
          f"output {r['audio_s']:.2f} s of stereo audio")  # fmt: skip
    stages = ("encode", "continue", "vocode")
    for stage in stages:
        print(f"  {stage:9s} {r[stage]:8.2f} s  {100 * r[stage] / total:5.1f} %  RTF {r[stage] / r['audio_s']:.3f}")
    print(f"  total     {total:8.2f} s  RTF {total / r['audio_s']:.3f}  (dominant: {max(stages, key=r.get)})")
    step = naive_step_seconds(pipe, r["prompt_frames"] + r["frames"] // 2, args.beam_size, args.naive_steps, device)
    naive, cached = step * r["frames"], r["continue"] / r["frames"]
    print(f"baseline: continue without the KV cache ~{naive:.2f} s ({step * 1000:.1f} ms/step at mid length, "
          f"extrapolated); with it {cached * 1000:.1f} ms/step: {naive / r['continue']:.1f}x faster")  # fmt: skip


if __name__ == "__main__":
    main()
