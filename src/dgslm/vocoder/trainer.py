"""Unit HiFi-GAN training (the speech-resynthesis recipe): LSGAN with multi-period and
multi-scale discriminators, feature matching x2, mel L1 x45, AdamW + exponential LR decay.

Outputs in ``save_dir``: ``g_XXXXXXXX`` generators in the original layout
(``{'generator': state_dict}`` with weight_g/weight_v) and ``config.json`` (the original tools
load both), ``checkpoint_last.pt`` (the full training state for exact resume) and TensorBoard
logs in ``save_dir/tensorboard``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from dgslm.model_check import build_checked
from dgslm.training import distributed
from dgslm.training.checkpointing import (
    latest_checkpoint,
    load_state,
    prune_checkpoints,
    rng_state,
    save_state,
    set_rng_state,
)
from dgslm.training.logger import TrainingLogger
from dgslm.vocoder.checkpoint import fold_state_dict, read_generator_state, save_generator
from dgslm.vocoder.config import VocoderConfig
from dgslm.vocoder.dataset import VocoderDataset, VocoderItem
from dgslm.vocoder.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from dgslm.vocoder.generator import UnitGenerator
from dgslm.vocoder.losses import discriminator_loss, duration_loss, feature_matching_loss, generator_adversarial_loss
from dgslm.vocoder.mel import mel_spectrogram

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Optimisation settings (the generator and loss settings are in ``VocoderConfig``)."""

    save_dir: str = "checkpoints"
    max_steps: int = 500_000
    batch_size: int = 16  # global, split over ranks
    learning_rate: float = 2e-4
    adam_b1: float = 0.8
    adam_b2: float = 0.99
    lr_decay: float = 0.999  # per epoch (len(dataset) / batch_size steps)
    segment_size: int = 8960
    seed: int = 1234
    save_interval: int = 50_000
    keep_last: int = 3  # generator files kept (-1: all)
    log_interval: int = 100
    summary_interval: int = 1000  # audio samples and mel images in TensorBoard
    disc_scale: float = 1.0  # discriminator width factor (small values for tests)
    device: str | None = None
    init_generator: str | None = None  # warm start: generator weights to begin from (no checkpoint yet)


def mel_of(wave: torch.Tensor, cfg: VocoderConfig) -> torch.Tensor:
    """The loss mel spectrogram with the config's settings (speech-resynthesis keys)."""
    x = cfg.extra
    return mel_spectrogram(
        wave, cfg.sampling_rate, x.get("n_fft", 1024), x.get("hop_size", 256), x.get("win_size", 1024),
        x.get("num_mels", 80), x.get("fmin", 0), x.get("fmax_for_loss") or cfg.sampling_rate / 2,
    )  # fmt: skip


def resynthesize(generator: UnitGenerator, item: VocoderItem) -> torch.Tensor:
    """[1, N] audio from one item's units (and speaker), on the generator's device."""
    device = next(generator.parameters()).device
    speaker = torch.tensor([item.speaker], device=device) if generator.spkr is not None else None
    return generator(item.code[None].to(device), speaker)


@torch.no_grad()
def evaluate_mel_l1(generator: UnitGenerator, dataset: VocoderDataset, max_items: int = 8) -> float:
    """Mean mel L1 between real and resynthesised audio over the first ``max_items`` items."""
    was_training = generator.training
    generator.eval()
    total = 0.0
    items = dataset.items[:max_items]
    for item in items:
        y_hat = resynthesize(generator, item)
        total += F.l1_loss(mel_of(y_hat, generator.cfg), mel_of(item.wave[None].to(y_hat.device), generator.cfg)).item()
    generator.train(was_training)
    return total / len(items)


class _GeneratorWithDurationLoss(torch.nn.Module):
    """One forward for the waveform and the duration loss, so that DDP sees every parameter."""

    def __init__(self, generator: UnitGenerator):
        super().__init__()
        self.generator = generator

    def forward(self, code: torch.Tensor, speaker: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        wave = self.generator(code, speaker)
        g = self.generator
        return wave, None if g.dur_predictor is None else duration_loss(g.dur_predictor, g.dict, code)


class VocoderTrainer:
    """GAN training of a unit HiFi-GAN (generator, multi-period and multi-scale discriminators),
    resumable from its last checkpoint."""

    def __init__(self, cfg: VocoderConfig, train: TrainConfig, dataset: VocoderDataset):
        self.cfg, self.train_cfg, self.dataset = cfg, train, dataset
        self.device = distributed.init(train.device)
        self.save_dir = Path(train.save_dir)
        torch.manual_seed(train.seed)
        self.generator = UnitGenerator(cfg).apply_weight_norm().to(self.device)
        self.mpd = MultiPeriodDiscriminator(scale=train.disc_scale).to(self.device)
        self.msd = MultiScaleDiscriminator(scale=train.disc_scale).to(self.device)
        betas = (train.adam_b1, train.adam_b2)
        self.optim_g = torch.optim.AdamW(self.generator.parameters(), train.learning_rate, betas=betas)
        self.optim_d = torch.optim.AdamW(
            [*self.mpd.parameters(), *self.msd.parameters()], train.learning_rate, betas=betas
        )
        self.sched_g = torch.optim.lr_scheduler.ExponentialLR(self.optim_g, train.lr_decay)
        self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.optim_d, train.lr_decay)
        self.g = distributed.wrap(_GeneratorWithDurationLoss(self.generator), self.device)
        self.d_mpd, self.d_msd = distributed.wrap(self.mpd, self.device), distributed.wrap(self.msd, self.device)
        self.step = 0
        self.steps_per_epoch = max(1, math.ceil(len(dataset) / train.batch_size))
        self.log = TrainingLogger(self.save_dir / "tensorboard", enabled=distributed.is_main())

    # ---- checkpoints -------------------------------------------------------------------
    def state(self) -> dict:
        modules = ("generator", "mpd", "msd", "optim_g", "optim_d", "sched_g", "sched_d")
        return {
            **{name: getattr(self, name).state_dict() for name in modules},
            "step": self.step,
            "rng": rng_state(),
            "vocoder_config": self.cfg.to_dict(),
            "train_config": dataclasses.asdict(self.train_cfg),
        }

    def save(self) -> None:
        if distributed.is_main():
            save_generator(self.save_dir / f"g_{self.step:08d}", self.generator, self.save_dir / "config.json")
            prune_checkpoints(self.save_dir, r"g_(\d{8})", self.train_cfg.keep_last)
            save_state(self.save_dir / "checkpoint_last.pt", self.state())
        distributed.barrier()

    def resume(self) -> bool:
        """Load ``checkpoint_last.pt`` if present (weights, optimisers, schedulers, RNG, step)."""
        path = latest_checkpoint(self.save_dir)
        if path is None:
            return False
        state = load_state(path)  # on the CPU: load_state_dict moves each part to its module's device
        for name in ("generator", "mpd", "msd", "optim_g", "optim_d", "sched_g", "sched_d"):
            getattr(self, name).load_state_dict(state[name])
        self.step = int(state["step"])
        set_rng_state(state["rng"])
        logger.info("resumed from %s at step %d", path, self.step)
        return True

    def warm_start(self, path: str | os.PathLike) -> None:
        """Begin from the generator weights of ``path`` (an original checkpoint or a converted
        folder, of this config's shape); discriminators and optimisers start fresh."""
        folded = fold_state_dict(read_generator_state(path))
        plain = build_checked(lambda: UnitGenerator(self.cfg), folded, None, path)
        plain.load_state_dict(folded)
        self.generator.load_state_dict(plain.apply_weight_norm().state_dict())
        logger.info("generator initialised from %s", path)

    # ---- one update ---------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        t = self.train_cfg
        per_rank = max(1, t.batch_size // distributed.world_size())
        y, code, speaker = self.dataset.batch(
            self.step, per_rank, t.segment_size // self.cfg.hop_size, t.seed, distributed.rank()
        )
        y, code = y.to(self.device).unsqueeze(1), code.to(self.device)
        speaker = speaker.to(self.device) if self.generator.spkr is not None else None
        y_hat, loss_dur = self.g(code, speaker)
        y_hat = y_hat.unsqueeze(1)

        # discriminators
        self.optim_d.zero_grad(set_to_none=True)
        real_p, fake_p, _, _ = self.d_mpd(y, y_hat.detach())
        real_s, fake_s, _, _ = self.d_msd(y, y_hat.detach())
        loss_d = discriminator_loss(real_p, fake_p) + discriminator_loss(real_s, fake_s)
        loss_d.backward()
        self.optim_d.step()

        # generator
        self.optim_g.zero_grad(set_to_none=True)
        loss_mel = F.l1_loss(mel_of(y_hat.squeeze(1), self.cfg), mel_of(y.squeeze(1), self.cfg))
        _, fake_p, fmap_rp, fmap_gp = self.d_mpd(y, y_hat)
        _, fake_s, fmap_rs, fmap_gs = self.d_msd(y, y_hat)
        loss_adv = generator_adversarial_loss(fake_p) + generator_adversarial_loss(fake_s)
        loss_fm = feature_matching_loss(fmap_rp, fmap_gp) + feature_matching_loss(fmap_rs, fmap_gs)
        loss_g = loss_adv + loss_fm + 45 * loss_mel
        losses = {
            "loss_d": loss_d.item(),
            "loss_adv": loss_adv.item(),
            "loss_fm": loss_fm.item(),
            "mel_l1": loss_mel.item(),
        }
        if loss_dur is not None:
            loss_g = loss_g + self.cfg.extra.get("dur_prediction_weight", 1.0) * loss_dur
            losses["loss_dur"] = loss_dur.item()
        loss_g.backward()
        self.optim_g.step()

        self.step += 1
        if self.step % self.steps_per_epoch == 0:
            self.sched_g.step()
            self.sched_d.step()
        losses["loss_g"] = loss_g.item()
        return losses

    def summary(self) -> None:
        """TensorBoard: validation mel L1, one resynthesised sample and its mel image."""
        mel_l1 = evaluate_mel_l1(self.generator, self.dataset)
        self.log.scalars("valid", self.step, {"mel_l1": mel_l1})
        item = self.dataset.items[0]
        with torch.no_grad():
            self.generator.eval()
            y_hat = resynthesize(self.generator, item)[0].cpu()
            self.generator.train()
        self.log.audio(f"generated/{item.name}", self.step, y_hat.numpy(), self.cfg.sampling_rate)
        mel = mel_of(y_hat[None], self.cfg)[0].flip(0)
        self.log.image(f"mel/{item.name}", self.step, ((mel - mel.min()) / (mel.max() - mel.min() + 1e-8)).numpy())

    def fit(self) -> list[dict[str, float]]:
        """Train up to ``max_steps`` (resuming if a checkpoint exists); returns the per-step losses."""
        t = self.train_cfg
        if not self.resume() and t.init_generator:
            self.warm_start(t.init_generator)
        self.generator.train(), self.mpd.train(), self.msd.train()
        history = []
        for _ in self.log.progress(
            range(self.step, t.max_steps), total=t.max_steps, initial=self.step, desc="train-vocoder"
        ):
            losses = self.train_step()
            history.append({"step": self.step, **losses})
            if self.step % t.log_interval == 0:
                summed = distributed.all_reduce_dict(losses, self.device)
                self.log.scalars("train", self.step, {k: v / distributed.world_size() for k, v in summed.items()})
            if self.step % t.summary_interval == 0 and distributed.is_main():
                self.summary()
            if self.step % t.save_interval == 0 or self.step == t.max_steps:
                self.save()
        self.log.close()
        return history
