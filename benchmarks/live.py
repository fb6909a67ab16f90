"""Live engine speed and latency: algorithmic latency, per-frame compute p50/p95/max, RTF.

Two model sets, 2 torch threads by default:

- ``demo``: the bundled demo models (log-mel units, 3-layer SpeechDLM, narrow HiFi-GAN);
- ``released``: released-size models with random weights: HuBERT Base (12 layers, 768 wide)
  to layer 6 + a 500-unit k-means, the released SpeechDLM configuration (6 layers, 4 cross,
  1024 wide), the full-size unit HiFi-GAN (512 initial channels, speaker table).

The person is ``--seconds`` of real speech (tests/reference/audio/ls.flac) then as much
silence; frames are fed as fast as possible (no pacing), each call timed, and the time split
between the stages (units, dialogue step, vocoder). Baseline in the same process: the offline
pipeline (encode the whole file, generate the model's channel, vocode) on the same audio.

    nice python benchmarks/live.py [--models demo,released] [--seconds 3] [--threads 2] [--bf16] [--dtype int8]
                                   [--vocoder-lookahead 2]  # 21: the exact layer-by-layer stream
    nice python benchmarks/live.py --agreement [--seconds 2]   # streaming-vs-offline unit agreement
    nice python benchmarks/live.py --vocoder-window            # streaming-vs-offline vocoder error
    nice python benchmarks/live.py --vocoder-speed 100         # window vs exact stream, per frame

``--bf16``: HuBERT and the vocoder under bf16 autocast (CPUs with avx512_bf16/AMX); ``--dtype``:
the SpeechDLM's decoding weights (float32, bfloat16, int8; see ``dgslm.lm.precision``).
``--clock cpu`` (with ``--threads 1``) times with the thread's CPU time instead of the wall
clock: on a shared, overloaded machine the wall clock mostly measures waiting for a core, the
CPU time what a frame costs on a free one (memory and cache contention still count).
Every figure is printed with the load average of the machine when it was taken (a shared
machine's figures are only as good as its load).
``--agreement``: per unit look-ahead, the share of frames whose streaming unit equals the
whole-file unit, for the demo's log-mel units, the reference HuBERT of tests/reference (small,
random weights, layer 3, km50) and a random-weight HuBERT Base (layer 6, random 500 centres).
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from pathlib import Path

import numpy as np
import torch

from dgslm.audio import load_audio
from dgslm.encoder.features import HubertFeatures
from dgslm.encoder.hubert import Hubert, HubertConfig
from dgslm.encoder.kmeans import KMeansQuantizer
from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.live import DuplexSession
from dgslm.live.units import StreamingUnits
from dgslm.live.vocoder import StreamingVocoder
from dgslm.lm.config import SpeechDLMConfig
from dgslm.lm.generate import GenerationConfig, generate_batch, make_generator
from dgslm.lm.hub import SpeechDLM
from dgslm.lm.model import SpeechDLMModel
from dgslm.lm.precision import DTYPES, set_decoding_dtype
from dgslm.pipeline.dialogue import DialoguePipeline
from dgslm.units.dictionary import Dictionary
from dgslm.vocoder.config import VocoderConfig
from dgslm.vocoder.generator import UnitGenerator
from dgslm.vocoder.streaming import StreamingGenerator
from dgslm.vocoder.unit_vocoder import UnitVocoder

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "reference"
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}
clock = CLOCKS["wall"]  # --clock: what per-frame compute is measured with
HUBERT_BASE_LAYER = 6


def person_audio(seconds: float) -> np.ndarray:
    wave, _ = load_audio(REFERENCE / "audio" / "ls.flac")
    speech = wave[: round(seconds * 16000), 0]
    audio = np.concatenate([speech, np.zeros_like(speech)])
    return audio[: len(audio) // 320 * 320]


def hubert_base_encoder(bf16: bool) -> UnitEncoder:
    torch.manual_seed(0)
    hubert = Hubert(HubertConfig()).eval()
    features = HubertFeatures(hubert, HUBERT_BASE_LAYER, autocast_dtype=torch.bfloat16 if bf16 else None)
    return UnitEncoder(features, KMeansQuantizer(torch.randn(500, 768)), "cpu")


def demo_pipeline(bf16: bool, dtype: str) -> DialoguePipeline:
    pipe = DialoguePipeline.from_pretrained(device="cpu", dtype=dtype)
    pipe.vocoder.autocast_dtype = torch.bfloat16 if bf16 else None
    return pipe


def released_pipeline(bf16: bool, dtype: str) -> DialoguePipeline:
    torch.manual_seed(0)
    units = Dictionary()
    for unit in range(500):
        units.add_symbol(str(unit))
    lm = SpeechDLM(set_decoding_dtype(SpeechDLMModel(SpeechDLMConfig()), dtype), {"unitA": units, "unitB": units})
    cfg = VocoderConfig(embedding_dim=128, model_in_dim=256, multispkr="from_input_file", num_speakers=200)
    vocoder = UnitVocoder(UnitGenerator(cfg), "cpu", torch.bfloat16 if bf16 else None)
    return DialoguePipeline(hubert_base_encoder(bf16), lm.eval(), vocoder)


def conditions() -> str:
    """The clock and the machine's load average (1 / 5 / 15 min), printed with every figure."""
    return f"{'wall' if clock is CLOCKS['wall'] else 'CPU'} clock, load average " + " / ".join(
        f"{x:.1f}" for x in os.getloadavg()
    )


def timed_stages(session: DuplexSession) -> dict[str, list[float]]:
    """Wrap the three stages of ``session`` so that each call's ms is recorded."""
    spent: dict[str, list[float]] = {"units": [], "dialogue": [], "vocoder": []}
    for name, owner, method in (("units", session.units, "push"), ("dialogue", session.dialogue, "advance"),
                                ("vocoder", session.vocoder, "push")):  # fmt: skip
        inner = getattr(owner, method)

        @functools.wraps(inner)
        def wrapper(*args, _inner=inner, _name=name):
            start = clock()
            out = _inner(*args)
            spent[_name].append((clock() - start) * 1000)
            return out

        setattr(owner, method, wrapper)
    return spent


def offline_seconds(pipe: DialoguePipeline, audio: np.ndarray) -> float:
    """Encode the whole file, sample the model's channel with the person's forced, vocode."""

    def run():
        units = pipe.encoder.units(torch.from_numpy(audio)[None])[0]
        d = pipe.lm.dictionary
        prompt = torch.full((1, 2, len(units)), d.unk(), dtype=torch.long)
        prompt[0, 0] = torch.tensor([d.index(str(int(u))) for u in units])
        config = GenerationConfig(max_len_b=len(units), beam=1, units_only=True)
        ((hypo,),) = generate_batch(pipe.lm.model, prompt, config, d, make_generator(0, pipe.lm.device))
        pipe.vocoder.code2wav([max(0, int(d[int(i)])) if d[int(i)].isdigit() else 0 for i in hypo.tokens[1]])

    start = clock()
    run()
    return clock() - start


def bench(name: str, pipe: DialoguePipeline, audio: np.ndarray, **engine) -> None:
    session = DuplexSession(pipe.encoder, pipe.lm, pipe.vocoder, GenerationConfig(context_window=512, seed=0), **engine)
    session.clock = clock
    for i in range(0, 20 * 320, 320):  # warm-up
        session.step(audio[i : i + 320])
    session.reset()
    spent = timed_stages(session)
    for i in range(0, len(audio), 320):
        session.step(audio[i : i + 320])
    stats = session.stats()
    stages = ", ".join(f"{k} p50 {np.percentile(v, 50):.1f} / p95 {np.percentile(v, 95):.1f} ms"
                       for k, v in spent.items() if v)  # fmt: skip
    offline = offline_seconds(pipe, audio) / (len(audio) / 16000)
    print(f"{name} ({torch.get_num_threads()} threads, {conditions()}): latency {stats['algorithmic_latency_ms']:.0f} ms, compute per 20 ms frame p50 "
          f"{stats['compute_ms_p50']:.1f} / p95 {stats['compute_ms_p95']:.1f} / max {stats['compute_ms_max']:.1f} ms, "
          f"late {stats['late_frames']}/{stats['frames']}, RTF {stats['real_time_factor']:.2f} "
          f"(offline pipeline RTF {offline:.2f}: live/offline {stats['real_time_factor'] / offline:.1f}x)")  # fmt: skip
    print(f"  stages: {stages}")


def agreement(encoder: UnitEncoder, audio: np.ndarray, lookaheads, context: int) -> list[float]:
    offline = encoder.units(torch.from_numpy(audio)[None])[0].tolist()
    shares = []
    for lookahead in lookaheads:
        stream = StreamingUnits(encoder, lookahead, context)
        live = [u for i in range(0, len(audio), 320) if (u := stream.push(audio[i : i + 320])) is not None]
        n = min(len(live), len(offline) - max(lookaheads) - 7)
        shares.append(float(np.mean([a == b for a, b in zip(live[:n], offline[:n])])))
    return shares


def snr(reference: np.ndarray, estimate: np.ndarray) -> str:
    err = estimate - reference
    return f"{10 * np.log10((reference**2).sum() / (err**2).sum()):5.1f} dB {np.abs(err).max():.4f}"


def vocoder_table(pipe: DialoguePipeline, audio: np.ndarray) -> None:
    """SNR and max |error| of the streaming vocoder against offline vocoding: per window, and
    for the layer-by-layer stream per reach (the share of each layer's right context waited for)."""
    units = pipe.encoder.units(torch.from_numpy(audio)[None])[0].tolist()
    offline = pipe.vocoder.code2wav(units).numpy()
    start = 8 * 320  # after warm-up
    print(f"vocoder window (units behind / ahead): SNR dB, max |error| (offline peak {np.abs(offline).max():.3f})")
    for context in (0, 2, 4, 8):
        cells = []
        for lookahead in (0, 1, 2, 3, 4):
            voc = StreamingVocoder(pipe.vocoder, 0, context, lookahead)
            live = np.concatenate([o for u in units if (o := voc.push(u)) is not None])
            cells.append(snr(offline[start : len(live)], live[start:]))
        print(f"  behind {context}: " + " | ".join(f"ahead {a}: {c}" for a, c in enumerate(cells)))
    generator = pipe.vocoder.generator
    cond = generator.conditioning(torch.tensor(units)[None])
    print("layer-by-layer stream (one unit per step), per reach: look-ahead, SNR dB, max |error|")
    for reach in (0.2, 0.3, 0.5, 0.7, 0.9, 1.0):
        stream = StreamingGenerator(generator, reach)
        live = torch.cat([stream.step(cond[:, :, i : i + 1]) for i in range(cond.shape[2])], 1)[0].numpy()
        print(f"  reach {reach}: {stream.delay / 320:4.1f} units, {snr(offline[start : len(live)], live[start:])}")


def vocoder_speed(frames: int) -> None:
    """Per-frame compute of the live vocoder (demo and full size, fp32 and bf16): the window
    (4 behind, 2 ahead) against the exact layer-by-layer stream (21 ahead), interleaved."""
    vocoders = {"demo": DialoguePipeline.from_pretrained(device="cpu").vocoder,
                "full size": released_pipeline(False, "float32").vocoder}  # fmt: skip
    units = np.random.default_rng(0).integers(0, 100, frames + 30).tolist()
    for name, vocoder in vocoders.items():
        for dtype in (None, torch.bfloat16):
            vocoder.autocast_dtype = dtype
            modes = {
                "window 4+1+2": StreamingVocoder(vocoder, 0, 4, 2),
                "exact stream": StreamingVocoder(vocoder, 0, 4, 21),
            }
            spent: dict[str, list[float]] = {mode: [] for mode in modes}
            for i, unit in enumerate(units):
                for mode, voc in modes.items():
                    start = clock()
                    voc.push(unit)
                    if i >= 30:  # after warm-up
                        spent[mode].append((clock() - start) * 1000)
            cells = ", ".join(f"{mode} p50 {np.percentile(v, 50):.2f} / p95 {np.percentile(v, 95):.2f} ms"
                              for mode, v in spent.items())  # fmt: skip
            print(f"vocoder {name} {'bf16' if dtype else 'fp32'} ({conditions()}): {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="demo,released")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of speech (then as much silence)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="the SpeechDLM's decoding weights")
    parser.add_argument("--hubert-context", type=int, default=10, help="left-context frames of streaming HuBERT")
    parser.add_argument("--vocoder-lookahead", type=int, default=2, help="21 or more: the exact stream")
    parser.add_argument("--vocoder-context", type=int, default=4)
    parser.add_argument("--clock", choices=CLOCKS, default="wall",
                        help="cpu: the thread's CPU time (with --threads 1: a frame's cost on a free core of a busy machine)")  # fmt: skip
    parser.add_argument("--agreement", action="store_true")
    parser.add_argument("--vocoder-window", action="store_true", help="streaming vs offline vocoder, per window")
    parser.add_argument("--vocoder-speed", type=int, default=0, metavar="FRAMES", help="vocoder modes' compute")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    global clock
    clock = CLOCKS[args.clock]
    if args.clock == "cpu" and args.threads != 1:
        parser.error("--clock cpu measures one thread: give --threads 1")
    audio = person_audio(args.seconds)
    torch.set_grad_enabled(False)  # inference only
    if args.vocoder_speed:
        vocoder_speed(args.vocoder_speed)
        return
    if args.vocoder_window:
        vocoder_table(DialoguePipeline.from_pretrained(device="cpu"), audio)
        return
    if args.agreement:
        lookaheads = (0, 1, 2, 4, 8)
        demo = DialoguePipeline.from_pretrained(device="cpu").encoder
        small = UnitEncoder.from_pretrained(
            REFERENCE / "hubert" / "hubert_small.pt", REFERENCE / "kmeans" / "km50.bin", 3
        )
        print("look-ahead (frames): " + " ".join(f"{la:>6}" for la in lookaheads))
        for name, encoder, context in (("demo log-mel + smoothing", demo, 0), ("reference HuBERT small L3", small, 50),
                                       ("reference HuBERT small L3", small, args.hubert_context),
                                       ("HuBERT Base random L6", hubert_base_encoder(False), 50),
                                       ("HuBERT Base random L6", hubert_base_encoder(False), args.hubert_context)):  # fmt: skip
            shares = agreement(encoder, audio, lookaheads, context)
            print(f"{name} (context {context}): " + " ".join(f"{s:6.1%}" for s in shares))
        return
    dtype = (" bf16" if args.bf16 else " fp32") + ("" if args.dtype == "float32" else f", SpeechDLM {args.dtype}")
    vocoder = dict(vocoder_lookahead=args.vocoder_lookahead, vocoder_context=args.vocoder_context)
    for name in args.models.split(","):
        if name == "demo":
            bench(f"demo{dtype}", demo_pipeline(args.bf16, args.dtype), audio, **vocoder)
        elif name == "released":
            bench(
                f"released-size{dtype}",
                released_pipeline(args.bf16, args.dtype),
                audio,
                unit_context=args.hubert_context,
                **vocoder,
            )


if __name__ == "__main__":
    main()
