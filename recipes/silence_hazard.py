"""Does a SpeechDLM know how long a silence has lasted? Its silence hazard against the corpus.

The chance that a channel starts speaking at the next frame, as a function of how long it has
been silent, decides the length of every pause and gap a frame-level model generates. This
script measures it on a split of a ``recipes/build_demo.sh`` work folder, teacher-forced:

- *own silence*: frames where a channel has been silent for k frames;
- *mutual silence*: frames where both channels have been silent for k frames (a gap or a
  pause; only a model that sees the other channel can tell this from listening).

For each bucket of k it prints the corpus rate of "speech next" beside each model's mean
predicted probability of a non-silence unit. A model whose column is flat while the corpus
column falls steeply draws memoryless (geometric) silences: too few short ones, too many long.
The silence unit is the unit of digital silence under the work folder's log-mel k-means.

    python recipes/silence_hazard.py demo-build --model full=demo-build/speechdlm/checkpoint_best.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.lm.checkpoint import load_model
from dgslm.units.codes import read_code_file
from dgslm.units.dictionary import Dictionary

CHANNELS = ("unitA", "unitB")
BUCKETS = (1, 2, 3, 4, 5, 10, 15, 20, 30, 40, 60)  # lower edges, in 20 ms frames


def windows(code_file: Path, dictionary: Dictionary, length: int, limit: int) -> torch.Tensor:
    """Back-to-back (N, 2, length) windows of the split's unit ids."""
    out = []
    for record in read_code_file(code_file):
        ids = torch.tensor([[dictionary.index(u) for u in record[ch].split()] for ch in CHANNELS])
        out += [ids[:, s : s + length] for s in range(0, ids.shape[1] - length + 1, length)]
    return torch.stack(out[:limit])


def run_lengths(values: np.ndarray) -> np.ndarray:
    """How many frames each value along the last axis has lasted so far, itself included."""
    steps = np.arange(values.shape[-1])
    changed = np.ones(values.shape, dtype=bool)
    changed[..., 1:] = values[..., 1:] != values[..., :-1]
    return steps - np.maximum.accumulate(np.where(changed, steps, 0), axis=-1) + 1


def bucket(k: np.ndarray) -> np.ndarray:
    """Index of the bucket of each silence length (-1 for 0: not silent)."""
    return np.searchsorted(BUCKETS, k, side="right") - 1


def label(b: int) -> str:
    """ "5-9", "1", "60+": the frames of bucket ``b``."""
    if b + 1 == len(BUCKETS):
        return f"{BUCKETS[b]}+"
    high = BUCKETS[b + 1] - 1
    return str(high) if high == BUCKETS[b] else f"{BUCKETS[b]}-{high}"


def hazard_table(tokens: torch.Tensor, silence: int, p_speech: dict[str, np.ndarray]) -> str:
    """Markdown: per bucket of own / mutual silence length, corpus rate vs model probabilities."""
    silent = tokens.eq(silence).numpy()
    own = run_lengths(silent) * silent  # frames this channel has been silent (0: speaking)
    both = np.broadcast_to(silent.all(axis=1, keepdims=True), silent.shape)
    mutual = run_lengths(both) * both
    speech_next = ~silent[..., 1:]
    names = list(p_speech)
    lines = [f"| silent for (frames) | kind | frames | corpus | {' | '.join(names)} |", "|---" * (4 + len(names)) + "|"]
    for kind, length in (("own", own), ("mutual", mutual)):
        length = length[..., :-1]
        for b in range(len(BUCKETS)):
            sel = bucket(length) == b
            if not sel.any():
                continue
            models = " | ".join(f"{p_speech[n][..., :-1][sel].mean():.3f}" for n in names)
            lines.append(f"| {label(b)} | {kind} | {int(sel.sum())} | {speech_next[sel].mean():.3f} | {models} |")
    return "\n".join(lines)


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path, help="work folder of recipes/build_demo.sh")
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="a SpeechDLM (checkpoint .pt or model folder); repeatable",
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--length", type=int, default=500, help="window length in frames (<= the training length)")
    parser.add_argument("--max-windows", type=int, default=200)
    args = parser.parse_args()

    dictionary = Dictionary.load(args.work / "data-bin" / "dict.unitA.txt")
    km = next(args.work.glob("kmeans_logmel_*.safetensors"))
    silence = dictionary.index(
        str(UnitEncoder.from_pretrained(None, km, feature_type="logmel", device="cpu").silence_unit())
    )
    tokens = windows(args.work / "units" / f"{args.split}.code", dictionary, args.length, args.max_windows)
    p_speech = {}
    for spec in args.model:
        name, path = spec.split("=", 1)
        model = load_model(path).eval()
        if not model.cfg.next_unit_prediction:
            parser.error(
                f"{path}: an edge-unit model (its heads predict the next *different* unit and silences "
                "last what its duration head says), so it has no next-frame silence hazard"
            )
        probs = [model(chunk).logits[:, :, 0].float().softmax(-1)[..., silence] for chunk in tokens.split(16)]
        p_speech[name] = 1 - torch.cat(probs).numpy()
    print(f"{len(tokens)} windows of {args.length} frames from {args.split}; silence unit {dictionary[silence]!r}")
    print("P(speech at the next frame | silent for k frames), teacher-forced:\n")
    print(hazard_table(tokens, silence, p_speech))


if __name__ == "__main__":
    main()
