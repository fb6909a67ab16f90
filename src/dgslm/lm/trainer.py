"""SpeechDLM training: the original's ``fairseq-train`` loop, resumable and data-parallel.

One update = ``update_freq`` batches per rank; gradients of the summed losses are divided by
the sample size summed over those batches and all ranks, clipped, and Adam steps (with
fairseq's decoupled weight decay) with an inverse-square-root learning rate. Checkpoints
(the original's ``.pt`` layout plus our training state) are written atomically to
``save_dir``:

- ``checkpoint_last.pt`` at every save; a rerun of the same command resumes from it exactly
  (model, Adam, loss scaler, update count, data position, every RNG state);
- ``checkpoint_best.pt`` when the validation ``best_checkpoint_metric`` (default ``loss``) is
  the best so far (the highest with ``maximize_best_checkpoint_metric``); ``patience`` stops
  the run after that many validations without improvement;
- ``checkpoint_{epoch}_{updates}.pt`` every ``save_interval_updates`` (the newest
  ``keep_interval_updates`` are kept) and ``checkpoint{epoch}.pt`` at epoch ends (unless
  ``no_epoch_checkpoints``; the newest ``keep_last_epochs`` are kept).

A run starts fresh, resumes, or fine-tunes by fairseq's ``--restore-file`` /
``--finetune-from-model`` / ``--reset-*`` rules (:mod:`dgslm.lm.restore`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from dgslm.errors import DgslmError
from dgslm.fileio import atomic_path
from dgslm.lm.batching import batch_by_size, epoch_batches, ordered_indices
from dgslm.lm.checkpoint import build_model, save_fairseq_checkpoint
from dgslm.lm.config import CriterionConfig, SpeechDLMConfig, TaskConfig
from dgslm.lm.criterion import SpeechDLMCriterion, reduce_metrics
from dgslm.lm.dataset import SpeechDLMDataset, load_dictionaries
from dgslm.lm.model import SpeechDLMModel
from dgslm.lm.restore import Resets, check_compatible, load_start, resolve_start
from dgslm.lm.train_config import TrainConfig
from dgslm.lm.validation import batch_to, make_loader, validate
from dgslm.training import checkpointing, distributed, optim
from dgslm.training.logger import TrainingLogger

log = logging.getLogger(__name__)


DDP_BACKENDS = ("pytorch_ddp", "c10d")  # fairseq's names of plain DistributedDataParallel


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Builds data, model and optimiser from the configurations; ``train()`` runs the loop."""

    def __init__(self, cfg: TrainConfig, model_cfg: SpeechDLMConfig, task: TaskConfig, criterion_cfg: CriterionConfig):
        if cfg.fp16 and cfg.bf16:
            raise DgslmError("choose one of --fp16 and --bf16")
        if not cfg.max_tokens and not cfg.batch_size:
            raise DgslmError("set --max-tokens or --batch-size")
        if cfg.ddp_backend not in DDP_BACKENDS:
            raise DgslmError(
                f"--ddp-backend {cfg.ddp_backend} is not supported: dgslm runs PyTorch DistributedDataParallel "
                f"({' or '.join(DDP_BACKENDS)})"
            )
        resets = Resets(cfg.reset_optimizer, cfg.reset_lr_scheduler, cfg.reset_dataloader, cfg.reset_meters)
        start, resets = resolve_start(cfg.save_dir, cfg.restore_file, cfg.finetune_from_model, resets)
        self.cfg, self.task, self.criterion_cfg = cfg, task, criterion_cfg
        self.device = distributed.init(cfg.device)
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        self.logger = TrainingLogger(cfg.tensorboard_logdir, enabled=distributed.is_main())
        seed_everything(cfg.seed)

        channels = model_cfg.channels
        self.dictionaries = load_dictionaries(cfg.data, channels)
        dictionary = self.dictionaries[channels[0]]
        self.pad, self.eos = dictionary.pad(), dictionary.eos()
        self.train_data = SpeechDLMDataset.load(cfg.data, "train", channels, task, self.pad, self.eos, len(dictionary))
        self.valid_data = None
        if not cfg.disable_validation and (Path(cfg.data) / f"{cfg.valid_subset}.{channels[0]}.idx").is_file():
            self.valid_data = SpeechDLMDataset.load(
                cfg.data, cfg.valid_subset, channels, task, self.pad, self.eos, len(dictionary)
            )
        if model_cfg.vocab_size != len(dictionary):
            raise DgslmError(f"model vocabulary {model_cfg.vocab_size} != dictionary size {len(dictionary)}", cfg.data)
        self.model_cfg = model_cfg
        self.model = SpeechDLMModel(model_cfg).to(self.device)
        self.criterion = SpeechDLMCriterion(criterion_cfg, model_cfg)
        self.optimizer = optim.adam(self.model.parameters(), cfg.lr, cfg.adam_betas, cfg.adam_eps, cfg.weight_decay)
        self.scaler = torch.amp.GradScaler(self.device.type, init_scale=cfg.fp16_init_scale, enabled=cfg.fp16)
        self.autocast_dtype = torch.float16 if cfg.fp16 else torch.bfloat16 if cfg.bf16 else None
        self.batches = self._train_batches()

        self.epoch, self.updates_in_epoch, self.num_updates = 1, 0, 0
        self.best_loss: float | None = None
        self.patience_best: float | None = None  # fairseq's should_stop_early state
        self.patience_runs = 0
        if start is not None:
            self._load(start, resets)
        self.ddp = distributed.wrap(self.model, self.device)

    # ---- data -----------------------------------------------------------------------------

    def _train_batches(self) -> list[np.ndarray]:
        """The fixed batches of the training split (their order changes every epoch)."""
        sizes = self.train_data.sizes
        order = ordered_indices(sizes, self.cfg.seed)
        limit = self.task.tokens_per_sample if self.task.sample_break_mode == "eos" else None
        if self.cfg.max_tokens:
            limit = min(limit or self.cfg.max_tokens, self.cfg.max_tokens)
        if limit:
            too_long = sizes[order] > limit
            if too_long.any():
                log.warning("skipping %d training blocks longer than %d tokens", int(too_long.sum()), limit)
                order = order[~too_long]
        if not len(order):
            raise DgslmError("no training blocks", self.cfg.data)
        return batch_by_size(
            order, sizes, self.cfg.max_tokens, self.cfg.batch_size, self.cfg.required_batch_size_multiple
        )

    def _epoch_groups(self) -> list[list[tuple[list[int], bool]]]:
        """This rank's updates of the current epoch: lists of (block ids, is_dummy)."""
        shard = epoch_batches(self.batches, self.epoch, self.cfg.seed, self.rank, self.world_size)
        items = [(b.tolist(), False) if b is not None else (self.batches[0].tolist(), True) for b in shard]
        freq = self.cfg.update_freq
        return [items[i : i + freq] for i in range(0, len(items), freq)]

    # ---- one update -----------------------------------------------------------------------

    def _step(self, batches: list[tuple[dict, bool]]) -> dict[str, float] | None:
        """Forward/backward ``batches`` and step; None if an fp16 overflow skipped it."""
        self.ddp.train()
        lr = optim.inverse_sqrt_lr(self.num_updates, self.cfg.lr, self.cfg.warmup_updates, self.cfg.warmup_init_lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        sums: dict[str, float] = defaultdict(float)
        for i, (batch, dummy) in enumerate(batches):
            last = i == len(batches) - 1
            sync = contextlib.nullcontext() if last or self.ddp is self.model else self.ddp.no_sync()
            with sync:
                with torch.autocast(
                    self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None
                ):
                    output = self.ddp(batch["src_tokens"])
                loss, sample_size, logs = self.criterion(output, batch)
                if dummy:  # a padding batch of an uneven shard: runs for DDP, counts nothing
                    loss = loss * 0.0
                self.scaler.scale(loss).backward()
            for key, value in logs.items():  # every rank reduces the same keys
                sums[key] += 0.0 if dummy else value
        sums = distributed.all_reduce_dict(dict(sums), self.device)
        sample_size = sums.get("sample_size", 0.0)
        self.scaler.unscale_(self.optimizer)
        scale = self.world_size / sample_size if sample_size > 0 else 1.0
        max_norm = self.cfg.clip_norm if self.cfg.clip_norm > 0 else float("inf")
        grad_norm = optim.scale_and_clip_grads_(self.model.parameters(), scale, max_norm)
        if not math.isfinite(grad_norm) and not self.cfg.fp16:
            raise DgslmError(f"non-finite gradients at update {self.num_updates + 1} (try a lower --lr)")
        self.scaler.step(self.optimizer)  # skipped by the scaler after an fp16 overflow
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if not math.isfinite(grad_norm):
            log.info("gradient overflow: loss scale now %g, update skipped", self.scaler.get_scale())
            return None
        self.num_updates += 1
        metrics = reduce_metrics(sums, self.criterion.targets)
        metrics.update(gnorm=grad_norm, lr=lr)
        if self.cfg.fp16:
            metrics["loss_scale"] = self.scaler.get_scale()
        return metrics

    # ---- the loop -------------------------------------------------------------------------

    def train(self, on_update: Callable[[int, dict[str, float]], None] | None = None) -> list[dict[str, float]]:
        """Train until ``max_update``/``max_epoch``; returns this run's per-update metrics.

        ``on_update(num_updates, metrics)`` is called after every update."""
        cfg = self.cfg
        history: list[dict[str, float]] = []
        while not self._done():
            groups = self._epoch_groups()
            remaining = groups[self.updates_in_epoch :]
            flat = [ids for group in remaining for ids, _ in group]
            loader = iter(make_loader(self.train_data, flat, self.cfg.num_workers, self.device.type == "cuda"))
            bar = self.logger.progress(range(len(groups)), total=len(groups), desc=f"epoch {self.epoch:03d}",
                                       initial=self.updates_in_epoch)  # fmt: skip
            bar_iter = iter(bar)
            started = time.perf_counter()
            for group in remaining:
                batches = [(batch_to(next(loader), self.device), dummy) for _, dummy in group]
                metrics = self._step(batches)
                self.updates_in_epoch += 1
                next(bar_iter, None)
                if metrics is None:
                    continue
                metrics["wps"] = metrics["wpb"] / max(time.perf_counter() - started, 1e-9)
                started = time.perf_counter()
                history.append(metrics)
                self.logger.scalars("train", self.num_updates, metrics,
                                    console=self.num_updates % max(cfg.log_interval, 1) == 0)  # fmt: skip
                if on_update is not None:
                    on_update(self.num_updates, metrics)
                saving = cfg.save_interval_updates > 0 and self.num_updates % cfg.save_interval_updates == 0
                validating = saving or (
                    cfg.validate_interval_updates > 0 and self.num_updates % cfg.validate_interval_updates == 0
                )
                stop = self._done()
                if (validating or stop) and self.updates_in_epoch < len(groups):  # else: at the epoch's end
                    val_loss = self._validate()
                    stop = self._done()  # --patience may stop the run here
                    if saving or stop:
                        self._save(val_loss, self.epoch)
                if stop:
                    break
            if self.updates_in_epoch >= len(groups):  # the epoch is complete
                finished = self.epoch
                self.epoch, self.updates_in_epoch = self.epoch + 1, 0
                val_loss = None
                if finished % max(cfg.validate_interval, 1) == 0 or self._done():
                    val_loss = self._validate()
                if finished % max(cfg.save_interval, 1) == 0 or self._done():
                    self._save(val_loss, finished, end_of_epoch=True)
        self.logger.close()
        return history

    def _done(self) -> bool:
        cfg = self.cfg
        return (
            (cfg.max_update > 0 and self.num_updates >= cfg.max_update)
            or (cfg.max_epoch > 0 and self.epoch > cfg.max_epoch)
            or (cfg.patience > 0 and self.patience_runs >= cfg.patience)
        )

    def _better(self, value: float, than: float | None) -> bool:
        if than is None:
            return True
        return value > than if self.cfg.maximize_best_checkpoint_metric else value < than

    def _validate(self) -> float | None:
        """Validate; returns the ``best_checkpoint_metric`` (fairseq's ``val_loss``) and
        counts the runs without improvement for ``--patience``."""
        if self.valid_data is None:
            return None
        metrics, _ = validate(
            self.model,
            self.valid_data,
            self.criterion_cfg,
            max_tokens=self.cfg.max_tokens_valid or self.cfg.max_tokens,
            max_sentences=self.cfg.batch_size,
            seed=self.cfg.seed,
            device=self.device,
            num_workers=self.cfg.num_workers,
            autocast_dtype=self.autocast_dtype,
            required_batch_size_multiple=self.cfg.required_batch_size_multiple,
            skip_invalid_size=self.cfg.skip_invalid_size_inputs_valid_test,
            progress=self.logger.progress,
        )
        self.logger.scalars("valid", self.num_updates, metrics)
        name = self.cfg.best_checkpoint_metric
        if name not in metrics:
            raise DgslmError(f"--best-checkpoint-metric {name!r} is not a validation metric ({', '.join(metrics)})")
        value = metrics[name]
        if self._better(value, self.patience_best):
            self.patience_best, self.patience_runs = value, 0
        else:
            self.patience_runs += 1
            if self.cfg.patience > 0 and self.patience_runs >= self.cfg.patience:
                log.info("early stop: %s has not improved for the last %d validations", name, self.patience_runs)
        return value

    # ---- checkpoints ----------------------------------------------------------------------

    def _state(self) -> dict:
        """Our training state, stored beside the original's entries of the checkpoint."""
        rng = checkpointing.rng_state()
        if distributed.is_distributed():
            gathered: list = [None] * self.world_size
            torch.distributed.all_gather_object(gathered, rng)
            rng = gathered
        else:
            rng = [rng]
        return {
            "epoch": self.epoch,
            "updates_in_epoch": self.updates_in_epoch,
            "num_updates": self.num_updates,
            "best_loss": self.best_loss,
            "patience": [self.patience_best, self.patience_runs],
            "world_size": self.world_size,
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "train_cfg": asdict(self.cfg),
            "task_cfg": asdict(self.task),
        }

    def _save(self, val_loss: float | None, epoch: int, end_of_epoch: bool = False) -> None:
        """Write checkpoint_last.pt and the copies due now (``epoch``: the one being trained
        or just finished)."""
        cfg = self.cfg
        if val_loss is not None and self._better(val_loss, self.best_loss):
            self.best_loss, is_best = val_loss, True
        else:
            is_best = False
        state = self._state()  # a collective: every rank takes part
        if cfg.no_save or not distributed.is_main():
            distributed.barrier()
            return
        folder = Path(cfg.save_dir)
        extra = {
            "optimizer_history": [{
                "criterion_name": "SpeechDLMCriterion", "optimizer_name": "Adam",
                "lr_scheduler_state": {"best": self.best_loss}, "num_updates": self.num_updates,
            }],
            "extra_state": {
                "train_iterator": {"version": 2, "epoch": self.epoch, "iterations_in_epoch": self.updates_in_epoch * cfg.update_freq, "shuffle": True},
                "val_loss": val_loss,
                "best": self.best_loss,
                "dgslm": state,
            },
            "last_optimizer_state": self.optimizer.state_dict(),
        }  # fmt: skip
        last = folder / "checkpoint_last.pt"
        save_fairseq_checkpoint(last, self.model, self.task, self.criterion_cfg, extra=extra)
        copies = []
        if end_of_epoch and not cfg.no_epoch_checkpoints:
            copies.append(folder / f"checkpoint{epoch}.pt")
        if not end_of_epoch and cfg.save_interval_updates > 0 and self.num_updates % cfg.save_interval_updates == 0:
            copies.append(folder / f"checkpoint_{epoch}_{self.num_updates}.pt")
        if is_best:
            copies.append(folder / "checkpoint_best.pt")
        for path in copies:
            with atomic_path(path) as tmp:
                shutil.copyfile(last, tmp)
        checkpointing.prune_checkpoints(folder, r"checkpoint_(\d+)_(\d+)\.pt", cfg.keep_interval_updates)
        checkpointing.prune_checkpoints(folder, r"checkpoint(\d+)\.pt", cfg.keep_last_epochs)
        log.info("saved %s (epoch %d, %d updates, val loss %s)", last, self.epoch, self.num_updates, val_loss)
        distributed.barrier()

    def _load(self, path: Path, resets: Resets) -> None:
        """Start from ``path`` (see :mod:`dgslm.lm.restore`), dropping what ``resets`` says."""
        start = load_start(path)
        check_compatible(start, self.model_cfg, self.dictionaries)
        self.model.load_state_dict(build_model(start.cfg, start.weights, path).state_dict())
        self.model.tie_weights()
        state = start.dgslm or {}
        if not resets.optimizer:
            if start.foreign_optimizer:
                raise DgslmError("the original's optimizer state cannot be restored: add --reset-optimizer", path)
            if start.optimizer:
                self.optimizer.load_state_dict(start.optimizer)
            if "scaler" in state:
                self.scaler.load_state_dict(state["scaler"])
            self.num_updates = state.get("num_updates", start.num_updates)
        if not resets.dataloader:
            self.epoch = start.epoch
            self.updates_in_epoch = state.get("updates_in_epoch", start.iterations_in_epoch // self.cfg.update_freq)
        if not resets.optimizer and not resets.meters:
            self.best_loss = state.get("best_loss", start.best)
            self.patience_best, self.patience_runs = state.get("patience", (None, 0))
        if state and not resets.any():  # an exact resume
            rng = state["rng"]
            checkpointing.set_rng_state(rng[self.rank] if len(rng) == self.world_size else rng[0])
        log.info("started from %s: epoch %d, %d updates", path, self.epoch, self.num_updates)
