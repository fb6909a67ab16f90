"""The training run's settings besides the model and task (``dgslm train``'s flags)."""

from __future__ import annotations

from dataclasses import dataclass

from dgslm.lm.restore import DEFAULT_RESTORE


@dataclass
class TrainConfig:
    """Everything a run needs besides the model and task configurations."""

    data: str
    save_dir: str = "checkpoints"
    tensorboard_logdir: str | None = None
    valid_subset: str = "valid"
    # optimisation
    lr: float = 5e-4
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    clip_norm: float = 0.0
    warmup_updates: int = 4000
    warmup_init_lr: float = -1.0
    max_tokens: int | None = None
    batch_size: int | None = None
    required_batch_size_multiple: int = 8
    update_freq: int = 1
    max_update: int = 0
    max_epoch: int = 0
    # checkpoints and validation
    save_interval: int = 1
    save_interval_updates: int = 0
    keep_interval_updates: int = -1
    keep_last_epochs: int = -1
    no_epoch_checkpoints: bool = False
    no_save: bool = False
    validate_interval: int = 1
    validate_interval_updates: int = 0
    disable_validation: bool = False
    max_tokens_valid: int | None = None
    skip_invalid_size_inputs_valid_test: bool = False
    # runtime
    log_interval: int = 100
    seed: int = 1
    fp16: bool = False
    fp16_init_scale: float = 128.0
    bf16: bool = False
    device: str | None = None
    num_workers: int = 1
    fairseq_compat: bool = False
    ddp_backend: str = "pytorch_ddp"
    # where to start (fairseq's rules: dgslm.lm.restore) and which checkpoint is best
    restore_file: str = DEFAULT_RESTORE
    finetune_from_model: str | None = None
    reset_optimizer: bool = False
    reset_lr_scheduler: bool = False
    reset_dataloader: bool = False
    reset_meters: bool = False
    best_checkpoint_metric: str = "loss"
    maximize_best_checkpoint_metric: bool = False
    patience: int = -1
