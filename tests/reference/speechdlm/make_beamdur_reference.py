"""Record of how checkpoint/speech_dlm_small_beamdur.pt and beamdur_generate.json were made.

Run with the original implementation (never a dgslm dependency), from this folder:

    python3 -m venv /work/fairseq-venv
    /work/fairseq-venv/bin/pip install torch==2.13.0 fairseq-fixed==0.12.3.1 "numpy<2" soundfile
    /work/fairseq-venv/bin/python make_beamdur_reference.py

The model is built and saved the way section 1 of README.md describes (fairseq-train's own
calls, no update, duration head scaled so that rounded durations are 1..7); the generation
runs are ``hub.generate`` calls recorded in the format of cross_generate.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from fairseq import checkpoint_utils, options, tasks, utils
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.models.speech_dlm import SpeechDLM
from fairseq.trainer import Trainer

NAME = "speech_dlm_small_beamdur"
# all layers cross-channel, learned positions, untied output, next-unit + edge-unit +
# non-delayed duration heads
FLAGS = [
    "--task", "speech_dlm_task", "--criterion", "speech_dlm_criterion", "--arch", "speech_dlm",
    "--decoder-layers", "2", "--decoder-cross-layers", "-1", "--decoder-embed-dim", "32",
    "--decoder-input-dim", "32", "--decoder-output-dim", "32", "--decoder-ffn-embed-dim", "64",
    "--decoder-attention-heads", "4", "--decoder-learned-pos",
    "--next-unit-prediction", "True", "--edge-unit-prediction", "True", "--duration-prediction", "True",
    "--delayed-duration-target", "False", "--general-unit-loss-weight", "0.5",
    "--tokens-per-sample", "256", "--sample-break-mode", "none", "--optimizer", "adam", "--lr", "0.0005",
    "--max-tokens", "2048", "--seed", "100503", "--cpu",
]  # fmt: skip
RUNS = [(1, 30), (3, 30), (5, 30), (5, 60)]  # (beam, continuation length)


def build_checkpoint(out: Path) -> None:
    with tempfile.TemporaryDirectory() as save_dir:
        parser = options.get_training_parser()
        args = options.parse_args_and_arch(parser, ["data-bin", *FLAGS, "--save-dir", save_dir])
        cfg = convert_namespace_to_omegaconf(args)
        np.random.seed(cfg.common.seed)
        utils.set_torch_seed(cfg.common.seed)
        task = tasks.setup_task(cfg.task)
        model = task.build_model(cfg.model)
        criterion = task.build_criterion(cfg.criterion)
        with torch.no_grad():  # README section 1: rounded durations of 1..7 instead of 0..1
            for head in model.decoder.output_duration_prediction:
                head.weight.mul_(4)
                head.bias.fill_(2.5)
        trainer = Trainer(cfg, task, model, criterion)
        _, epoch_itr = checkpoint_utils.load_checkpoint(cfg.checkpoint, trainer)
        epoch_itr.next_epoch_itr(shuffle=False)
        checkpoint_utils.save_checkpoint(cfg.checkpoint, trainer, epoch_itr, None)
        out.write_bytes((Path(save_dir) / "checkpoint_last.pt").read_bytes())


def prompts() -> dict[str, dict[str, str]]:
    sequences = json.loads(Path("inputs.json").read_text())["sequences"]
    found = {name: seq["units"] for name, seq in sequences.items()}
    lines = {ch: Path(f"raw/valid.{ch}").read_text().splitlines() for ch in ("unitA", "unitB")}
    for i in (3, 7, 11):  # short prompts: most steps are free
        found[f"valid{i}"] = {ch: " ".join(lines[ch][i].split()[:6]) for ch in lines}
    return found


def main() -> int:
    ckpt = Path("checkpoint") / f"{NAME}.pt"
    if not ckpt.exists():
        build_checkpoint(ckpt)
    hub = SpeechDLM.from_pretrained(
        model_name_or_path="checkpoint", checkpoint_file=ckpt.name, data_name_or_path="checkpoint"
    ).eval()
    out = {}
    for name, prompt in prompts().items():
        n = len(prompt["unitA"].split())
        for beam, extra in RUNS:
            kwargs = {"beam": beam, "sampling": False, "max_len_a": 0, "max_len_b": n + extra}
            started = time.perf_counter()
            hypos = hub.generate([hub.encode(prompt)], **kwargs)[0]
            seconds = time.perf_counter() - started
            out[f"{name}/{'greedy' if beam == 1 else f'beam{beam}'}_b{n + extra}"] = {
                "kwargs": kwargs,
                "prompt": prompt,
                "sample": hub.decode(hypos[0]["tokens"]),
                "n_prompt_units": n,
                "n_output_units": n + extra,
                "hypos": [
                    {
                        "score": float(h["score"]),
                        "tokens": {ch: t.tolist() for ch, t in h["tokens"].items()},
                        "positional_scores": h["positional_scores"].tolist(),
                    }
                    for h in hypos
                ],
                "seconds": round(seconds, 3),
            }
            print(name, kwargs, [round(float(h["score"]), 5) for h in hypos], file=sys.stderr)
    Path("beamdur_generate.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
