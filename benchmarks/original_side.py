"""The original's half of ``vs_original.py``: run with an interpreter that has fairseq.

Never imported by dgslm or its tests. Each subcommand times one thing with the original's
own code and prints one JSON line on stdout:

- ``sample CKPT_DIR DATA_DIR --batch B --prompt-units P --new-units N``: greedy decoding with
  the original's ``SpeechDLM`` hub (``hub.generate``, beam 1, no sampling);
- ``hubert --seconds S [--save DIR]``: fairseq ``HubertModel`` (HuBERT Base, random weights)
  features of layer 12 (``extract_features(output_layer=12)``, no mask, inference mode); with
  ``--save``, its weights (``weights.pt``), the input (``wave.pt``) and the features
  (``features.pt``, [1, T, 768]) for dgslm to compare;
- ``vocoder OUT_DIR --seconds S``: writes a random-weight unit HiFi-GAN checkpoint and its
  ``config.json`` into OUT_DIR (for dgslm to load the same weights), then times
  ``CodeHiFiGANVocoder`` on the two channels one by one (as the original vocodes a dialogue).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

VOCODER_CONFIG = {  # the unit HiFi-GAN of dGSLM: 500 units, no speaker table
    "resblock": "1",
    "upsample_rates": [5, 4, 4, 2, 2],
    "upsample_kernel_sizes": [11, 8, 8, 4, 4],
    "upsample_initial_channel": 512,
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "num_embeddings": 500,
    "embedding_dim": 128,
    "model_in_dim": 128,
    "sampling_rate": 16000,
}


def best_of(fn, repeats: int) -> tuple[object, float]:
    out, best = None, float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


@torch.inference_mode()
def sample(args: argparse.Namespace) -> dict:
    from fairseq.models.speech_dlm import SpeechDLM

    hub = SpeechDLM.from_pretrained(
        model_name_or_path=args.ckpt_dir, checkpoint_file=args.checkpoint, data_name_or_path=args.data_dir
    ).eval()
    g = torch.Generator().manual_seed(args.seed)
    prompts = [
        {
            ch: " ".join(str(u) for u in torch.randint(0, 500, (args.prompt_units,), generator=g).tolist())
            for ch in ("unitA", "unitB")
        }  # fmt: skip
        for _ in range(args.batch)
    ]
    kwargs = {"beam": 1, "sampling": False, "max_len_a": 0, "max_len_b": args.prompt_units + args.new_units}
    hub.generate([hub.encode(prompts[0])], **{**kwargs, "max_len_b": args.prompt_units + 5})  # warm-up
    encoded = [hub.encode(p) for p in prompts]
    hypos, seconds = best_of(lambda: hub.generate(encoded, **kwargs), args.repeats)
    steps = max(len(h[0]["tokens"]["unitA"]) for h in hypos)
    first = {ch: t.tolist() for ch, t in hypos[0][0]["tokens"].items()}
    return {"seconds": seconds, "steps": steps, "batch": args.batch, "tokens": first, "prompt": prompts[0]}


@torch.inference_mode()
def hubert(args: argparse.Namespace) -> dict:
    from fairseq.data import Dictionary
    from fairseq.models.hubert.hubert import HubertConfig, HubertModel
    from fairseq.tasks.hubert_pretraining import HubertPretrainingConfig

    torch.manual_seed(0)
    dictionary = Dictionary()
    for unit in range(500):
        dictionary.add_symbol(str(unit))
    model = HubertModel(HubertConfig(label_rate=50), HubertPretrainingConfig(labels=["km"]), [dictionary]).eval()
    wave = 0.1 * torch.randn(1, int(args.seconds * 16_000))
    run = lambda: model.extract_features(wave, padding_mask=None, mask=False, output_layer=12)[0]  # noqa: E731
    run()  # warm-up
    feats, seconds = best_of(run, args.repeats)
    if args.save:
        out = Path(args.save)
        out.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), out / "weights.pt")
        torch.save(wave, out / "wave.pt")
        torch.save(feats, out / "features.pt")
    return {"seconds": seconds, "frames": feats.shape[1], "dim": feats.shape[2]}


@torch.inference_mode()
def vocoder(args: argparse.Namespace) -> dict:
    from fairseq.models.text_to_speech.codehifigan import CodeGenerator
    from fairseq.models.text_to_speech.vocoder import CodeHiFiGANVocoder

    torch.manual_seed(0)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(VOCODER_CONFIG, indent=1) + "\n")
    torch.save({"generator": CodeGenerator(VOCODER_CONFIG).state_dict()}, out / "g_00000000")
    model = CodeHiFiGANVocoder(str(out / "g_00000000"), VOCODER_CONFIG)
    hop = 5 * 4 * 4 * 2 * 2
    codes = torch.randint(0, 500, (2, int(args.seconds * 16_000 / hop)), generator=torch.Generator().manual_seed(1))
    torch.save(codes, out / "codes.pt")
    run = lambda: torch.stack([model({"code": codes[c : c + 1].clone()}) for c in range(2)])  # noqa: E731
    run()  # warm-up
    wave, seconds = best_of(run, args.repeats)
    torch.save(wave, out / "original_wave.pt")
    return {"seconds": seconds, "samples": wave.shape[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample")
    s.add_argument("ckpt_dir")
    s.add_argument("data_dir")
    s.add_argument("--checkpoint", default="checkpoint_last.pt")
    s.add_argument("--batch", type=int, default=1)
    s.add_argument("--prompt-units", type=int, default=15)
    s.add_argument("--new-units", type=int, default=200)
    s.add_argument("--seed", type=int, default=0)
    h = sub.add_parser("hubert")
    h.add_argument("--seconds", type=float, default=10.0)
    h.add_argument("--save", help="a folder for the weights, input and features")
    v = sub.add_parser("vocoder")
    v.add_argument("out_dir")
    v.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps({"sample": sample, "hubert": hubert, "vocoder": vocoder}[args.command](args)))


if __name__ == "__main__":
    main()
