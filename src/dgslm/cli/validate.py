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

from dgslm.cli.train import add_task_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA", help="folder with dict.<channel>.txt and {split}.<channel>.{bin,idx}")
    parser.add_argument("--path", required=True, help="checkpoint .pt file or dgslm model folder")
    parser.add_argument("--valid-subset", default="valid", help="comma-separated splits to validate")
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--batch-size", "--max-sentences", dest="batch_size", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print unrounded metrics and sums as JSON")
    parser.add_argument("--tokens-per-sample", type=int, default=None, help="override the checkpoint's")
    parser.add_argument("--sample-break-mode", default=None, choices=["none", "complete", "eos"],
                        help="override the checkpoint's")  # fmt: skip
    add_task_arguments(parser)


def load_for_validation(path: str, data: str):
    """``(model, model_cfg, task_cfg, criterion_cfg)`` of a checkpoint file or folder; a ``.pt``
    file's task and criterion sections (how it was trained) give the settings."""
    from dgslm.errors import DgslmError
    from dgslm.lm.checkpoint import build_model, load_fairseq_checkpoint, load_model
    from dgslm.lm.criterion import CriterionConfig
    from dgslm.lm.dataset import TaskConfig, discover_channels, target_list

    raw_cfg: dict = {}
    if Path(path).is_dir():
        model = load_model(path)
        cfg = model.cfg
        task = TaskConfig(
            channels=cfg.channels,
            tokens_per_sample=cfg.max_positions,
            targets=target_list(cfg.next_unit_prediction, cfg.edge_unit_prediction, cfg.duration_prediction),
            delayed_duration_target=cfg.delayed_duration_target,
        )
    else:
        cfg, state_dict, raw_cfg = load_fairseq_checkpoint(path)
        raw_cfg = raw_cfg or {}
        task = TaskConfig.from_fairseq_cfg(raw_cfg.get("task") or {})
        if not (raw_cfg.get("task") or {}).get("channels"):
            task.channels = discover_channels(data)
        model = build_model(cfg, state_dict, path)
    channel_weights = (raw_cfg.get("task") or {}).get("channel_weights")
    if channel_weights:
        try:
            channel_weights = tuple(float(w) for w in str(channel_weights).split(","))
        except ValueError:
            raise DgslmError(f"bad channel_weights {channel_weights!r} in the checkpoint's task", path) from None
        if len(channel_weights) != len(task.channels):
            raise DgslmError(f"channel_weights {channel_weights} do not match the channels {task.channels}", path)
    criterion = CriterionConfig(
        channels=task.channels,
        targets=task.targets,
        delayed_duration_target=task.delayed_duration_target,
        main_and_cross_weights=cfg.main_and_cross_weights,
        channel_weights=channel_weights or None,
        general_unit_loss_weight=cfg.general_unit_loss_weight,
        edge_unit_loss_weight=cfg.edge_unit_loss_weight,
        duration_loss_weight=cfg.duration_loss_weight,
        sentence_avg=bool((raw_cfg.get("criterion") or {}).get("sentence_avg", False)),
        pad=cfg.pad_index,
    )
    return model, cfg, task, criterion


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
    model, cfg, task, criterion = load_for_validation(args.path, args.data)
    task.tokens_per_sample = args.tokens_per_sample or task.tokens_per_sample
    task.sample_break_mode = args.sample_break_mode or task.sample_break_mode
    criterion.fairseq_compat = args.fairseq_compat
    dictionary = load_model_dictionaries(args.data, cfg)[cfg.channels[0]]  # checks the vocabulary size
    model.to(device)
    dtype = torch.float16 if args.fp16 else torch.bfloat16 if args.bf16 else None
    results = {}
    try:
        for subset in args.valid_subset.split(","):
            dataset = SpeechDLMDataset.load(args.data, subset, task, dictionary.pad(), dictionary.eos(), cfg.vocab_size)
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
