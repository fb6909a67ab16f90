"""Where a training run starts: fairseq's ``--restore-file`` / ``--finetune-from-model`` rules.

- ``--restore-file checkpoint_last.pt`` (the default) means ``SAVE_DIR/checkpoint_last.pt`` if
  it exists, else a fresh run; any other value is loaded as given (relative to the working
  directory, else to ``SAVE_DIR``) on every launch, as in fairseq.
- ``--finetune-from-model PATH`` loads weights only and resets optimizer, learning-rate
  schedule, meters and data position; it is ignored once ``SAVE_DIR/checkpoint_last.pt``
  exists, so a rerun of the same command resumes the fine-tuning run.
- ``--reset-optimizer`` (Adam state, loss scale and update count), ``--reset-dataloader``
  (epoch 1, first batch), ``--reset-lr-scheduler`` and ``--reset-meters`` (the best
  validation metric) drop parts of a restored state.

A start point can be one of our training checkpoints (everything restorable, RNG included),
an original fairseq ``.pt`` (weights, update count, data position, best metric; its Adam state
only when empty) or one of our model folders (weights). The model the flags describe must have
the checkpoint's architecture, and the data's dictionaries the checkpoint's, when it has any.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from dgslm.errors import DgslmError
from dgslm.lm.checkpoint import is_pretrained_folder, parse_fairseq_checkpoint, read_pretrained
from dgslm.lm.config import SpeechDLMConfig
from dgslm.model_folder import CONFIG, WEIGHTS
from dgslm.safe_pickle import safe_torch_load
from dgslm.units.dictionary import Dictionary

log = logging.getLogger(__name__)

DEFAULT_RESTORE = "checkpoint_last.pt"

# SpeechDLMConfig attribute -> the train flag that sets it (what an architecture error names)
ARCH_FLAGS = {
    "vocab_size": "dictionary size",
    "num_channels": "number of channels",
    "embed_dim": "--decoder-embed-dim",
    "input_dim": "--decoder-input-dim",
    "output_dim": "--decoder-output-dim",
    "ffn_dim": "--decoder-ffn-embed-dim",
    "layers": "--decoder-layers",
    "num_cross_layers": "--decoder-cross-layers",
    "attention_heads": "--decoder-attention-heads",
    "activation_fn": "--activation-fn",
    "learned_positions": "--decoder-learned-pos",
    "share_input_output_embed": "--share-decoder-input-output-embed",
    "scale_embedding": "scale_embedding",
    "final_layer_norm": "final_layer_norm",
    "positional_embeddings": "positional_embeddings",
    "duration_prediction": "--duration-prediction",
    "prediction_heads": "--main-and-cross-weights (cross-channel heads)",
}


@dataclass
class Resets:
    """Which parts of a restored state are dropped (``--reset-*``)."""

    optimizer: bool = False
    lr_scheduler: bool = False
    dataloader: bool = False
    meters: bool = False

    def any(self) -> bool:
        return self.optimizer or self.lr_scheduler or self.dataloader or self.meters


@dataclass
class StartPoint:
    """What a checkpoint file or model folder offers to a training run."""

    path: Path
    cfg: SpeechDLMConfig
    weights: dict[str, Tensor]
    dictionaries: dict[str, Dictionary] | None = None
    num_updates: int = 0
    epoch: int = 1
    iterations_in_epoch: int = 0  # batches (fairseq's train_iterator); ours count updates
    best: float | None = None
    optimizer: dict[str, Any] | None = None  # our Adam state
    foreign_optimizer: bool = False  # an original's non-empty optimizer state (not restorable)
    dgslm: dict[str, Any] | None = None  # our training state, when we wrote the file


def resolve_start(
    save_dir: str,
    restore_file: str = DEFAULT_RESTORE,
    finetune_from_model: str | None = None,
    resets: Resets | None = None,
) -> tuple[Path | None, Resets]:
    """The file or folder to start from (None: a fresh run) and the resets that apply."""
    resets = resets or Resets()
    if finetune_from_model and resets.any():
        raise DgslmError("--finetune-from-model cannot be combined with --reset-* flags (it resets everything)")
    if finetune_from_model and restore_file != DEFAULT_RESTORE:
        raise DgslmError("--finetune-from-model and --restore-file cannot both be given")
    if restore_file == DEFAULT_RESTORE:
        last = Path(save_dir) / DEFAULT_RESTORE
        if last.is_file():
            if finetune_from_model:
                log.info("%s exists: resuming it, --finetune-from-model is ignored", last)
            return last, resets
        if not finetune_from_model:
            return None, resets
        path = Path(finetune_from_model)
        if not path.exists():
            raise DgslmError("--finetune-from-model: no such checkpoint", path)
        log.info("fine-tuning from %s: optimizer, lr scheduler, meters and dataloader are reset", path)
        return path, Resets(True, True, True, True)
    path = Path(restore_file)
    if not path.exists() and (Path(save_dir) / restore_file).exists():
        path = Path(save_dir) / restore_file
    if not path.exists():
        raise DgslmError("--restore-file: no such checkpoint", path)
    return path, resets


def load_start(path: str | Path) -> StartPoint:
    """Read a training checkpoint, an original ``.pt`` or one of our model folders."""
    path = Path(path)
    if path.is_dir():
        if not is_pretrained_folder(path):
            raise DgslmError(f"not a checkpoint file or model folder (no {CONFIG} + {WEIGHTS})", path)
        return StartPoint(path, *read_pretrained(path))
    ckpt = safe_torch_load(path)
    cfg, weights, _ = parse_fairseq_checkpoint(ckpt, path)
    history = ckpt.get("optimizer_history") or [{}]
    extra = ckpt.get("extra_state") or {}
    iterator = extra.get("train_iterator") or {}
    best = extra.get("best", (history[-1].get("lr_scheduler_state") or {}).get("best"))
    start = StartPoint(
        path,
        cfg,
        weights,
        dictionaries=_dictionaries_beside(path, cfg),
        num_updates=int(history[-1].get("num_updates") or 0),
        epoch=int(iterator.get("epoch", 1)),
        iterations_in_epoch=int(iterator.get("iterations_in_epoch", 0)),
        best=None if best is None else float(best),
        dgslm=extra.get("dgslm"),
    )
    optimizer = ckpt.get("last_optimizer_state") or {}
    if start.dgslm is not None:
        start.optimizer = optimizer
    else:
        start.foreign_optimizer = bool(optimizer.get("state"))
    return start


def _dictionaries_beside(path: Path, cfg: SpeechDLMConfig) -> dict[str, Dictionary] | None:
    """``dict.<channel>.txt`` next to an original ``.pt`` (the released model's layout), if any."""
    files = [path.parent / f"dict.{channel}.txt" for channel in cfg.channels]
    if not all(f.is_file() for f in files):
        return None
    return {channel: Dictionary.load(f) for channel, f in zip(cfg.channels, files)}


def check_compatible(start: StartPoint, flags: SpeechDLMConfig, dictionaries: dict[str, Dictionary]) -> None:
    """One-line error naming every architecture field (by its flag) or dictionary entry that
    differs between the run's flags/data and the checkpoint."""
    wanted = [("max_positions", "--max-target-positions")] if flags.learned_positions else []
    differ = []
    for name, flag in [*ARCH_FLAGS.items(), *wanted]:
        mine, theirs = getattr(flags, name), getattr(start.cfg, name)
        if mine != theirs:
            differ.append(f"{flag} {mine} here, {theirs} in the checkpoint")
    if differ:
        raise DgslmError(f"architecture differs from the checkpoint: {'; '.join(differ)}", start.path)
    if start.dictionaries is None:
        return
    for (channel, mine), (theirs_channel, theirs) in zip(dictionaries.items(), start.dictionaries.items()):
        if mine.symbols != theirs.symbols:
            index = next(
                (i for i, (a, b) in enumerate(zip(mine.symbols, theirs.symbols)) if a != b),
                min(len(mine), len(theirs)),
            )
            raise DgslmError(
                f"dictionary of channel {channel!r} differs from the checkpoint's {theirs_channel!r} at id "
                f"{index}: {mine[index]!r} in the data, {theirs[index]!r} in the checkpoint "
                f"({len(mine)} vs {len(theirs)} entries)",
                start.path,
            )
