"""The original's command lines work as written: the README's training command builds the
released configuration, and every flag of the original scripts keeps its name and default."""

from __future__ import annotations

import argparse
import importlib
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def parser_of(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"dgslm {command}")
    importlib.import_module(f"dgslm.cli.{command}").add_arguments(parser)
    return parser


def readme_command(start: str) -> list[str]:
    """The README's shell command starting with ``start`` (backslash continuations joined)."""
    text = README.read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.strip().startswith(start))
    return shlex.split(line)


def test_readme_training_command_builds_the_released_configuration(reference, tmp_path):
    from dgslm.cli.train import build_configs
    from dgslm.lm.model import SpeechDLMModel

    argv = readme_command("dgslm train $BIN")[2:]
    argv = [
        str(reference / "speechdlm" / "data-bin") if a == "$BIN" else a.replace("$CKPT", str(tmp_path)) for a in argv
    ]
    train, model, task, criterion = build_configs(parser_of("train").parse_args(argv))
    assert (model.layers, model.cross_layers, model.embed_dim, model.ffn_dim, model.attention_heads) == (
        6,
        4,
        512,
        2048,
        8,
    )
    assert model.share_input_output_embed and (model.dropout, model.attention_dropout) == (0.1, 0.1)
    assert model.checkpoint_activations and model.max_positions == 6144 and model.vocab_size == 504
    assert model.channels == ("unitA", "unitB") and task.tokens_per_sample == 6144 and task.sample_break_mode == "none"
    assert model.targets == ("edge", "duration") and model.delayed_duration_target
    assert (train.lr, train.adam_betas, train.clip_norm, train.warmup_init_lr) == (5e-4, (0.9, 0.98), 1.0, 1e-7)
    assert (train.max_tokens, train.update_freq, train.max_update, train.warmup_updates) == (18432, 16, 250000, 20000)
    assert (train.save_interval_updates, train.keep_last_epochs, train.no_epoch_checkpoints) == (10000, 1, True)
    assert (train.log_interval, train.seed, train.fp16, train.num_workers) == (50, 100501, True, 4)
    assert train.skip_invalid_size_inputs_valid_test and train.save_dir == str(tmp_path)
    assert SpeechDLMModel(model).num_parameters() == 23_380_481


def test_readme_validate_command_parses():
    args = parser_of("validate").parse_args([a.strip("[]") for a in readme_command("dgslm validate $BIN")[2:]])
    assert args.max_tokens == 6144 and args.json and args.fairseq_compat


# the original sample_speech_dlm.py (spec 5.7)
SAMPLE_DEFAULTS = {
    "channels": "unitA,unitB", "prefix_size": None, "batch_max_tokens": 9216, "batch_max_positions": 6144,
    "batch_max_sentences": None, "skip_invalid_size_batch": False, "beam_search": False, "beam_size": 5,
    "sampling_topk": -1, "sampling_topp": -1.0, "max_len_a": 0, "max_len_b": 500, "min_len": 1,
    "temperature": 1.0, "dur_temperature": 1.0, "verbose": False, "seed": 123,
}  # fmt: skip
# the original generate_stereo_waveform.py (spec encoder_vocoder 3.5); --results-path: our fix
VOCODE_DEFAULTS = {"channels": "unitA,unitB", "channel1_spk": 0, "channel2_spk": 4, "sample_rate": 16000,
                   "mix": False, "dur_prediction": False, "results_path": "."}  # fmt: skip
# fairseq-train for speech_dlm (fairseq defaults; the flags of spec appendix A and issue 4)
TRAIN_DEFAULTS = {
    "task": "speech_dlm_task", "criterion": "speech_dlm_criterion", "arch": "speech_dlm", "optimizer": "adam",
    "next_unit_prediction": False, "edge_unit_prediction": True, "duration_prediction": True,
    "delayed_duration_target": True, "max_target_durations": 256, "tokens_per_sample": 1024,
    "sample_break_mode": "none", "main_and_cross_weights": (1.0, 0.0), "general_unit_loss_weight": 0.0,
    "edge_unit_loss_weight": 1.0, "duration_loss_weight": 1.0, "sentence_avg": False,
    "decoder_cross_layers": None, "share_decoder_input_output_embed": False, "decoder_learned_pos": False,
    "dropout": 0.1, "attention_dropout": 0.0, "adam_betas": (0.9, 0.999), "clip_norm": 0.0,
    "warmup_updates": 4000, "warmup_init_lr": -1.0, "max_tokens": None, "update_freq": 1, "num_workers": 1,
    "skip_invalid_size_inputs_valid_test": False, "max_update": 0, "save_interval_updates": 0,
    "keep_last_epochs": -1, "keep_interval_updates": -1, "no_epoch_checkpoints": False, "log_interval": 100,
    "seed": 1, "fp16": False, "bf16": False, "checkpoint_activations": False, "save_dir": "checkpoints",
    "tensorboard_logdir": None, "validate_interval_updates": 0, "required_batch_size_multiple": 8,
}  # fmt: skip


@pytest.mark.parametrize(
    ("command", "required", "defaults"),
    [
        ("sample", ["--in-file", "i", "--out-file", "o", "--ckpt", "c", "--data", "d"], SAMPLE_DEFAULTS),
        ("vocode", ["--in-file", "i", "--vocoder", "v", "--vocoder-cfg", "c"], VOCODE_DEFAULTS),
        ("train", ["DATA"], TRAIN_DEFAULTS),
    ],
)
def test_original_flags_and_defaults(command, required, defaults):
    args = vars(parser_of(command).parse_args(required))
    assert {name: args.get(name, "MISSING") for name in defaults} == defaults


def test_training_architecture_flags():
    parser = parser_of("train")
    args = parser.parse_args(["D", "--arch", "speech_dlm_big", "--decoder-layers", "3", "--decoder-embed-dim", "64",
                              "--decoder-ffn-embed-dim", "128", "--decoder-attention-heads", "4",
                              "--decoder-learned-pos", "--bf16", "--lr", "0.001,0.002"])  # fmt: skip
    assert (args.arch, args.decoder_layers, args.decoder_embed_dim, args.decoder_ffn_embed_dim) == (
        "speech_dlm_big",
        3,
        64,
        128,
    )
    assert args.decoder_attention_heads == 4 and args.decoder_learned_pos and args.bf16 and args.lr == 0.001
