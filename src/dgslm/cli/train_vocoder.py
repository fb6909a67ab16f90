"""``dgslm train-vocoder``: train a unit HiFi-GAN on your audio and its units (speech-resynthesis
recipe). Multi-GPU: ``torchrun --nproc_per_node=N -m dgslm train-vocoder ...``."""

from __future__ import annotations

import argparse
import dataclasses
import logging

logger = logging.getLogger(__name__)

# config.json training keys (speech-resynthesis names) -> TrainConfig fields
CONFIG_TRAIN_KEYS = ("batch_size", "learning_rate", "adam_b1", "adam_b2", "lr_decay", "seed", "segment_size")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--in-file", required=True, help="code file from `dgslm encode` ('audio' + one key per channel)"
    )
    parser.add_argument(
        "--audio-root", default=None, help="folder the 'audio' paths are relative to (default: the code file's)"
    )
    parser.add_argument(
        "--config", default=None, help="speech-resynthesis style config.json (default: full-size HuBERT config)"
    )
    parser.add_argument("--checkpoint_path", "--save-dir", dest="save_dir", default="checkpoints", help="output folder")
    parser.add_argument(
        "--channels", default="unitA,unitB", help="comma-separated unit keys; key i pairs with audio channel i"
    )
    parser.add_argument(
        "--channel-speakers", default=None, help="speaker id per channel, e.g. '0,4' (default: single speaker)"
    )
    parser.add_argument("--training_steps", "--max-steps", dest="max_steps", type=int, default=500_000)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="global batch (default: config batch_size, else 16)"
    )
    parser.add_argument(
        "--segment-size", type=int, default=None, help="samples per training segment (default: config, else 8960)"
    )
    parser.add_argument("--checkpoint_interval", "--save-interval", dest="save_interval", type=int, default=50_000)
    parser.add_argument("--keep-last", type=int, default=3, help="generator files to keep (-1: all)")
    parser.add_argument("--stdout_interval", "--log-interval", dest="log_interval", type=int, default=100)
    parser.add_argument("--summary_interval", "--summary-interval", dest="summary_interval", type=int, default=1000)
    parser.add_argument(
        "--disc-scale", type=float, default=1.0, help="discriminator width factor (e.g. 0.0625 for tests)"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--init-generator",
        default=None,
        help="warm start: begin from this generator (original checkpoint or converted folder, same config shape) "
        "unless the save dir has a checkpoint to resume",
    )
    parser.add_argument("--device", default=None, help="torch device (default: cuda:LOCAL_RANK if available, else cpu)")


def run(args: argparse.Namespace) -> int:
    from dgslm.cli.options import split_names
    from dgslm.errors import DgslmError
    from dgslm.training import distributed
    from dgslm.vocoder.config import VocoderConfig
    from dgslm.vocoder.dataset import VocoderDataset
    from dgslm.vocoder.trainer import TrainConfig, VocoderTrainer

    cfg = VocoderConfig.load(args.config) if args.config else VocoderConfig()
    channels = split_names(args.channels)
    speakers = None
    if args.channel_speakers:
        try:
            speakers = tuple(int(s) for s in args.channel_speakers.split(","))
        except ValueError:
            raise DgslmError(f"--channel-speakers must be integers, got {args.channel_speakers!r}") from None
        if len(speakers) != len(channels) or min(speakers) < 0:
            raise DgslmError(f"--channel-speakers needs one non-negative id per channel ({len(channels)})")
        cfg.multispkr = cfg.multispkr or "from_input_file"
        cfg.num_speakers = max(cfg.num_speakers, max(speakers) + 1)
    elif cfg.multispkr:
        raise DgslmError("the config is multi-speaker: give --channel-speakers", args.config)
    cfg.model_in_dim = cfg.embedding_dim * (2 if cfg.multispkr else 1)
    if cfg.dur_predictor_params is not None:
        cfg.dur_predictor_params = dataclasses.replace(cfg.dur_predictor_params, encoder_embed_dim=cfg.embedding_dim)

    train = TrainConfig(
        save_dir=args.save_dir, max_steps=args.max_steps, save_interval=args.save_interval, keep_last=args.keep_last,
        log_interval=args.log_interval, summary_interval=args.summary_interval, disc_scale=args.disc_scale,
        device=args.device, init_generator=args.init_generator, **{k: cfg.extra[k] for k in CONFIG_TRAIN_KEYS if k in cfg.extra},
    )  # fmt: skip
    overrides = {"batch_size": args.batch_size, "segment_size": args.segment_size, "seed": args.seed}
    train = dataclasses.replace(train, **{k: v for k, v in overrides.items() if v is not None})
    cfg.extra.update({k: getattr(train, k) for k in CONFIG_TRAIN_KEYS})  # config.json records what was used
    if train.segment_size % cfg.hop_size:
        raise DgslmError(f"segment size {train.segment_size} is not a multiple of the {cfg.hop_size} samples per unit")
    dataset = VocoderDataset(
        args.in_file, args.audio_root, channels, speakers, cfg.hop_size, cfg.sampling_rate, cfg.num_embeddings,
        peak_normalize=bool(cfg.extra.get("peak_normalize", True)),
    )  # fmt: skip
    logger.info("%d training items (%d channels), save dir %s", len(dataset), len(channels), train.save_dir)
    try:
        VocoderTrainer(cfg, train, dataset).fit()
    finally:
        distributed.cleanup()
    return 0
