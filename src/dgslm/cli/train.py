"""``dgslm train DATA``: train a SpeechDLM with the original ``fairseq-train`` command line.

The README's training command works as written (``fairseq-train`` -> ``dgslm train``); run it
under ``torchrun --nproc_per_node=N`` for data parallelism. Rerunning a command resumes from
``SAVE_DIR/checkpoint_last.pt``; ``--finetune-from-model`` starts from the weights of a released
``.pt``, one of our checkpoints or model folders.
"""

from __future__ import annotations

import argparse
import ast

from dgslm.cli.options import add_task_arguments
from dgslm.errors import DgslmError
from dgslm.lm.fairseq_cfg import parse_bool, parse_floats

ARCHS = {  # layers, cross layers, embed dim, ffn dim, heads
    "speech_dlm": (6, -1, 512, 2048, 8),
    "speech_dlm_big": (12, 12, 1024, 4096, 16),
}


def str_flag(value: str) -> bool:
    """The original's string booleans ("True"/"False", any case)."""
    try:
        return parse_bool(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def float_pair(value: str) -> tuple[float, float]:
    """ "1,0" or "(0.9, 0.98)" -> two floats."""
    try:
        parsed = ast.literal_eval(value if "," in value else f"({value},)")
        parsed = tuple(float(v) for v in (parsed if isinstance(parsed, tuple) else (parsed,)))
    except (ValueError, SyntaxError):
        raise argparse.ArgumentTypeError(f"expected two numbers like '1,0', got {value!r}") from None
    if len(parsed) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers, got {value!r}")
    return parsed


def first_float(value: str) -> float:
    """fairseq's ``--lr`` is a comma-separated list; the first value is used."""
    return float(str(value).split(",")[0])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA", help="folder with dict.<channel>.txt and {split}.<channel>.{bin,idx}")
    add_task_arguments(parser)
    t = parser.add_argument_group("data")
    t.add_argument("--channels", default=None, help="comma-separated channel names (default: the dict files)")
    t.add_argument("--channel-weights", default=None, help="comma-separated loss weight per channel")
    t.add_argument("--next-unit-prediction", type=str_flag, default=False)
    t.add_argument("--edge-unit-prediction", type=str_flag, default=True)
    t.add_argument("--duration-prediction", type=str_flag, default=True)
    t.add_argument("--delayed-duration-target", type=str_flag, default=True)
    t.add_argument("--max-target-durations", type=int, default=256)
    t.add_argument("--tokens-per-sample", type=int, default=1024)
    t.add_argument("--sample-break-mode", default="none", choices=["none", "complete", "eos"])
    t.add_argument("--max-tokens-valid", type=int, default=None)
    t.add_argument("--valid-subset", default="valid")
    c = parser.add_argument_group("criterion")
    c.add_argument("--main-and-cross-weights", type=float_pair, default=(1.0, 0.0))
    c.add_argument("--general-unit-loss-weight", type=float, default=0.0)
    c.add_argument("--edge-unit-loss-weight", type=float, default=1.0)
    c.add_argument("--duration-loss-weight", type=float, default=1.0)
    c.add_argument("--sentence-avg", action="store_true")
    m = parser.add_argument_group("model")
    m.add_argument("--arch", default="speech_dlm", choices=sorted(ARCHS))
    m.add_argument("--decoder-layers", type=int, default=None)
    m.add_argument("--decoder-cross-layers", type=int, default=None, help="last N layers are cross-channel; -1 all")
    m.add_argument("--decoder-embed-dim", type=int, default=None)
    m.add_argument("--decoder-input-dim", type=int, default=None, help="default: --decoder-embed-dim")
    m.add_argument("--decoder-output-dim", type=int, default=None, help="default: --decoder-embed-dim")
    m.add_argument("--decoder-ffn-embed-dim", type=int, default=None)
    m.add_argument("--decoder-attention-heads", type=int, default=None)
    m.add_argument("--decoder-learned-pos", action="store_true")
    m.add_argument("--share-decoder-input-output-embed", action="store_true")
    m.add_argument("--dropout", type=float, default=0.1)
    m.add_argument("--attention-dropout", type=float, default=0.0)
    m.add_argument("--activation-dropout", "--relu-dropout", dest="activation_dropout", type=float, default=0.0)
    m.add_argument("--activation-fn", default="relu", choices=["relu", "gelu"])
    m.add_argument("--max-target-positions", type=int, default=None)
    m.add_argument("--checkpoint-activations", action="store_true")
    o = parser.add_argument_group("optimisation")
    o.add_argument("--optimizer", default="adam", choices=["adam"])
    o.add_argument("--adam-betas", type=float_pair, default=(0.9, 0.999))
    o.add_argument("--adam-eps", type=float, default=1e-8)
    o.add_argument("--weight-decay", "--wd", dest="weight_decay", type=float, default=0.0)
    o.add_argument("--clip-norm", type=float, default=0.0)
    o.add_argument(
        "--lr",
        type=first_float,
        default=5e-4,
        help="peak learning rate (default: the released recipe's; fairseq's own default is 0.25)",
    )
    o.add_argument("--lr-scheduler", default="inverse_sqrt", choices=["inverse_sqrt"])
    o.add_argument("--warmup-updates", type=int, default=4000)
    o.add_argument("--warmup-init-lr", type=float, default=-1.0)
    o.add_argument("--update-freq", type=int, default=1)
    o.add_argument("--max-update", type=int, default=0)
    o.add_argument("--max-epoch", type=int, default=0)
    k = parser.add_argument_group("checkpoints, validation and logs")
    k.add_argument("--save-dir", default="checkpoints")
    k.add_argument("--tensorboard-logdir", default=None)
    k.add_argument("--save-interval", type=int, default=1, help="epochs between epoch checkpoints")
    k.add_argument("--save-interval-updates", type=int, default=0)
    k.add_argument("--keep-interval-updates", type=int, default=-1)
    k.add_argument("--keep-last-epochs", type=int, default=-1)
    k.add_argument("--no-epoch-checkpoints", action="store_true")
    k.add_argument("--no-save", action="store_true")
    k.add_argument("--validate-interval", type=int, default=1, help="epochs between validations")
    k.add_argument("--validate-interval-updates", type=int, default=0)
    k.add_argument("--disable-validation", action="store_true")
    k.add_argument("--log-interval", type=int, default=100)
    k.add_argument("--best-checkpoint-metric", default="loss", help="validation metric that picks checkpoint_best.pt")
    k.add_argument("--maximize-best-checkpoint-metric", action="store_true", help="a higher metric is better")
    k.add_argument("--patience", type=int, default=-1,
                   help="stop after this many validations without improvement (<= 0: never)")  # fmt: skip
    r = parser.add_argument_group("restoring and fine-tuning (fairseq's rules)")
    r.add_argument("--restore-file", default="checkpoint_last.pt",
                   help="checkpoint to resume (default: SAVE_DIR/checkpoint_last.pt if it exists); any other "
                        "value is loaded on every launch")  # fmt: skip
    r.add_argument("--finetune-from-model", default=None,
                   help="original .pt, dgslm checkpoint or model folder: weights only, everything else reset; "
                        "ignored once SAVE_DIR/checkpoint_last.pt exists")  # fmt: skip
    r.add_argument("--reset-optimizer", action="store_true", help="drop Adam state, loss scale and update count")
    r.add_argument("--reset-lr-scheduler", action="store_true",
                   help="accepted; inverse_sqrt has no state besides the update count")  # fmt: skip
    r.add_argument("--reset-dataloader", action="store_true", help="start at epoch 1, first batch")
    r.add_argument("--reset-meters", action="store_true", help="forget the best validation metric")
    r.add_argument("--ddp-backend", default="pytorch_ddp",
                   help="pytorch_ddp or c10d (both: PyTorch DistributedDataParallel under torchrun)")  # fmt: skip


def build_configs(args: argparse.Namespace):
    """(TrainConfig, SpeechDLMConfig, TaskConfig, CriterionConfig) from the parsed flags."""
    from dgslm.lm.config import CriterionConfig, SpeechDLMConfig, TaskConfig
    from dgslm.lm.dataset import discover_channels, load_dictionaries
    from dgslm.lm.trainer import TrainConfig

    channels = tuple(sorted(args.channels.split(","))) if args.channels else discover_channels(args.data)
    task = TaskConfig(
        tokens_per_sample=args.tokens_per_sample,
        sample_break_mode=args.sample_break_mode,
        max_target_durations=args.max_target_durations,
    )
    channel_weights = None
    if args.channel_weights:
        try:
            channel_weights = parse_floats(args.channel_weights, len(channels))
        except ValueError:
            raise DgslmError(f"--channel-weights needs {len(channels)} values, got {args.channel_weights!r}") from None
    criterion = CriterionConfig(
        channel_weights=channel_weights, sentence_avg=args.sentence_avg, fairseq_compat=args.fairseq_compat
    )
    layers, cross, embed, ffn, heads = ARCHS[args.arch]
    pick = lambda value, default: default if value is None else value  # noqa: E731
    embed = pick(args.decoder_embed_dim, embed)
    dictionary = load_dictionaries(args.data, channels)[channels[0]]
    model = SpeechDLMConfig(
        vocab_size=len(dictionary),
        channels=channels,
        embed_dim=embed,
        input_dim=pick(args.decoder_input_dim, embed),
        output_dim=pick(args.decoder_output_dim, embed),
        ffn_dim=pick(args.decoder_ffn_embed_dim, ffn),
        layers=pick(args.decoder_layers, layers),
        cross_layers=pick(args.decoder_cross_layers, cross),
        attention_heads=pick(args.decoder_attention_heads, heads),
        dropout=args.dropout,
        attention_dropout=args.attention_dropout,
        activation_dropout=args.activation_dropout,
        activation_fn=args.activation_fn,
        learned_positions=args.decoder_learned_pos,
        max_positions=args.max_target_positions or args.tokens_per_sample,
        share_input_output_embed=args.share_decoder_input_output_embed,
        next_unit_prediction=args.next_unit_prediction,
        edge_unit_prediction=args.edge_unit_prediction,
        duration_prediction=args.duration_prediction,
        delayed_duration_target=args.delayed_duration_target,
        main_and_cross_weights=args.main_and_cross_weights,
        general_unit_loss_weight=args.general_unit_loss_weight,
        edge_unit_loss_weight=args.edge_unit_loss_weight,
        duration_loss_weight=args.duration_loss_weight,
        checkpoint_activations=args.checkpoint_activations,
        pad_index=dictionary.pad(),
    )
    if "next" in model.targets and model.general_unit_loss_weight <= 0:
        raise DgslmError("--next-unit-prediction True needs --general-unit-loss-weight > 0")
    train = TrainConfig(**{f: getattr(args, f) for f in TrainConfig.__dataclass_fields__ if hasattr(args, f)})
    return train, model, task, criterion


def run(args: argparse.Namespace) -> int:
    from dgslm.lm.trainer import Trainer
    from dgslm.training import distributed

    try:
        Trainer(*build_configs(args)).train()
    finally:
        distributed.cleanup()
    return 0
