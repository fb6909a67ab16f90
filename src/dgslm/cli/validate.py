"""``dgslm validate DATA --path CKPT``: the original's ``fairseq-validate`` for a SpeechDLM.

Prints ``valid on 'valid' subset | ...`` like the original (``--json``: the unrounded
metrics and summed counts as JSON). Reads the original's ``.pt`` checkpoints and ours (a
``.pt`` written by ``dgslm train`` or a ``save_pretrained`` folder). The task settings
(tokens per sample, targets, ...) come from the checkpoint, as in the original.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dgslm.cli.options import add_task_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA", help="folder with dict.<channel>.txt and {split}.<channel>.{bin,idx}")
    parser.add_argument("--path", required=True, help="checkpoint .pt file or dgslm model folder")
    parser.add_argument("--valid-subset", default="valid", help="comma-separated splits to validate")
    parser.add_argument("--json", action="store_true", help="print unrounded metrics and sums as JSON")
    parser.add_argument("--tokens-per-sample", type=int, default=None, help="override the checkpoint's")
    parser.add_argument("--sample-break-mode", default=None, choices=["none", "complete", "eos"],
                        help="override the checkpoint's")  # fmt: skip
    add_task_arguments(parser)


def load_for_validation(path: str):
    """``(model, model_cfg, task_cfg, criterion_cfg)`` of a checkpoint file or folder; a ``.pt``
    file's task and criterion sections (how it was trained) give the settings, a folder's
    model its block length."""
    from dgslm.errors import DgslmError
    from dgslm.lm.checkpoint import build_model, load_fairseq_checkpoint, load_model
    from dgslm.lm.config import CriterionConfig, TaskConfig
    from dgslm.lm.fairseq_cfg import read_criterion, read_task

    if Path(path).is_dir():
        model = load_model(path)
        return model, model.cfg, TaskConfig(tokens_per_sample=model.cfg.max_positions), CriterionConfig()
    cfg, state_dict, raw_cfg = load_fairseq_checkpoint(path)
    try:
        task, criterion = read_task(raw_cfg), read_criterion(raw_cfg, cfg.num_channels)
    except (ValueError, TypeError) as err:
        raise DgslmError(f"unusable task or criterion cfg: {err}", path) from None
    return build_model(cfg, state_dict, path), cfg, task, criterion


def run(args: argparse.Namespace) -> int:
    import torch

    from dgslm.errors import DgslmError
    from dgslm.lm.checkpoint import load_model_dictionaries
    from dgslm.lm.criterion import format_metrics
    from dgslm.lm.dataset import SpeechDLMDataset
    from dgslm.lm.validation import validate
    from dgslm.training import distributed
    from dgslm.training.logger import TrainingLogger

    if args.fp16 and args.bf16:
        raise DgslmError("choose one of --fp16 and --bf16")
    device = distributed.init(args.device)
    model, cfg, task, criterion = load_for_validation(args.path)
    task.tokens_per_sample = args.tokens_per_sample or task.tokens_per_sample
    task.sample_break_mode = args.sample_break_mode or task.sample_break_mode
    criterion.fairseq_compat = args.fairseq_compat
    dictionary = load_model_dictionaries(args.data, cfg)[cfg.channels[0]]  # checks the vocabulary size
    model.to(device)
    dtype = torch.float16 if args.fp16 else torch.bfloat16 if args.bf16 else None
    results = {}
    try:
        for subset in args.valid_subset.split(","):
            dataset = SpeechDLMDataset.load(
                args.data, subset, cfg.channels, task, dictionary.pad(), dictionary.eos(), cfg.vocab_size
            )
            metrics, sums = validate(
                model, dataset, criterion, max_tokens=args.max_tokens, max_sentences=args.batch_size,
                seed=args.seed, device=device, num_workers=args.num_workers, autocast_dtype=dtype,
                required_batch_size_multiple=args.required_batch_size_multiple,
                skip_invalid_size=args.skip_invalid_size_inputs_valid_test,
                progress=TrainingLogger(enabled=distributed.is_main()).progress,
            )  # fmt: skip
            results[subset] = {"metrics": metrics, "raw_sums": sums}
            if distributed.is_main() and not args.json:
                print(f"valid on '{subset}' subset | {format_metrics(metrics)}", flush=True)
    finally:
        distributed.cleanup()
    if distributed.is_main() and args.json:
        print(json.dumps(results, indent=1))
    return 0
