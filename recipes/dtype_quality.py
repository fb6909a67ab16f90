"""How close bfloat16 and int8 decoding weights stay to float32 (the quality guard of
``docs/speed-dtype.md``).

    python recipes/dtype_quality.py DATA [--model FOLDER_OR_PT] [--split valid] [--prompts 24]

DATA is a binarised SpeechDLM dataset (``dgslm preprocess``) the model did not train on. For
every dtype it prints, against float32 in the same process:

- validation loss on ``--split`` (``dgslm validate``'s loss; blocks of ``--tokens-per-sample``);
- teacher-forced agreement: the share of positions of that split where the main head's most
  likely next unit is the same (both channels);
- greedy agreement: ``--prompts`` prompts of ``--prompt-units`` units (the split's blocks, cut
  at evenly spaced places) continued greedily (beam 1) by ``--new-units``; the share of
  generated positions whose unit equals float32's. Free-running, so one early difference
  changes the rest of that continuation.

``--model random`` uses the released configuration with random weights (seed 0) and writes
DATA itself (random unit runs, 504 symbols).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from dgslm.lm.checkpoint import load_model_dictionaries
from dgslm.lm.config import CriterionConfig, SpeechDLMConfig, TaskConfig
from dgslm.lm.dataset import SpeechDLMDataset
from dgslm.lm.generate import GenerationConfig, generate_batch
from dgslm.lm.hub import SpeechDLM
from dgslm.lm.model import SpeechDLMModel
from dgslm.lm.precision import DTYPES, set_decoding_dtype
from dgslm.lm.validation import validate
from dgslm.models.resolve import DEMO_DIR
from dgslm.units.dictionary import Dictionary
from dgslm.units.indexed_dataset import write_indexed_dataset


def random_model(data: Path, split: str) -> SpeechDLMModel:
    """The released configuration with random weights, and random unit runs written to ``data``."""
    torch.manual_seed(0)
    dictionary = Dictionary()
    for unit in range(500):
        dictionary.add_symbol(str(unit))
    data.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(1)
    for channel in ("unitA", "unitB"):
        dictionary.save(data / f"dict.{channel}.txt")
        runs = torch.randint(4, 504, (6000,), generator=g).repeat_interleave(torch.randint(1, 9, (6000,), generator=g))
        lines = [torch.cat([chunk, torch.tensor([dictionary.eos()])]) for chunk in runs[:20000].split(1000)]
        write_indexed_dataset(data / f"{split}.{channel}", lines, len(dictionary))
    return SpeechDLMModel(SpeechDLMConfig()).eval()


def load(model: str, data: Path, split: str) -> SpeechDLMModel:
    """The float32 model: a folder, a ``.pt``, or ``random``."""
    if model == "random":
        return random_model(data, split)
    return SpeechDLM.from_pretrained(model, data_name_or_path=Path(model) if Path(model).is_dir() else data).model


@torch.inference_mode()
def teacher_forced_argmax(model: SpeechDLMModel, blocks: torch.Tensor) -> torch.Tensor:
    """(N, C, T) most likely next units of the main head, block by block."""
    return torch.cat([model(block[None]).logits[:, :, 0].argmax(-1) for block in blocks])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--model", default=str(DEMO_DIR / "speech_dlm"), help="folder, .pt, or 'random'")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--tokens-per-sample", type=int, default=512)
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--prompt-units", type=int, default=50)
    parser.add_argument("--new-units", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    reference = load(args.model, args.data, args.split)
    cfg = reference.cfg
    dictionary = load_model_dictionaries(args.data, cfg)[cfg.channels[0]]
    task = TaskConfig(tokens_per_sample=args.tokens_per_sample)
    dataset = SpeechDLMDataset.load(args.data, args.split, cfg.channels, task, dictionary.pad(), dictionary.eos(),
                                    cfg.vocab_size)  # fmt: skip
    full = [i for i in range(len(dataset)) if len(dataset[i]["source"][0]) == args.tokens_per_sample]
    blocks = torch.stack([torch.stack(dataset[i]["source"]) for i in full])  # (N, C, T)
    span = args.prompt_units + args.new_units
    starts = torch.linspace(0, args.tokens_per_sample - span, max(1, args.prompts // len(blocks) + 1)).long()
    prompts = torch.stack([block[:, s + 1 : s + 1 + args.prompt_units] for block in blocks for s in starts])
    prompts = prompts[torch.linspace(0, len(prompts) - 1, args.prompts).long()]
    greedy = GenerationConfig(sampling=False, beam=1, max_len_b=span)
    print(f"{args.model}: {len(dataset)} blocks of <= {args.tokens_per_sample} units ({len(blocks)} full), "
          f"{len(prompts)} prompts of {args.prompt_units} + {args.new_units} greedy units, {args.threads} threads")  # fmt: skip
    print(f"{'dtype':>9} {'valid loss':>10} {'vs fp32':>8} {'teacher-forced':>14} {'greedy':>7}")

    state = {k: v.clone() for k, v in reference.state_dict().items()}
    results = {}
    for name in DTYPES:
        model = SpeechDLMModel(cfg).eval()
        model.load_state_dict(state)
        model.tie_weights()
        model = set_decoding_dtype(model, name)
        metrics, _ = validate(model, dataset, CriterionConfig(), max_tokens=4 * args.tokens_per_sample)
        argmax = teacher_forced_argmax(model, blocks)
        hypos = generate_batch(model, prompts, greedy, dictionary)
        tokens = torch.stack([h[0].tokens[:, args.prompt_units :] for h in hypos])
        results[name] = (metrics["loss"], argmax, tokens)
        loss0, argmax0, tokens0 = results["float32"]
        print(f"{name:>9} {metrics['loss']:10.4f} {100 * (metrics['loss'] / loss0 - 1):+7.2f}% "
              f"{100 * argmax.eq(argmax0).float().mean():13.2f}% {100 * tokens.eq(tokens0).float().mean():6.2f}%")  # fmt: skip


if __name__ == "__main__":
    main()
