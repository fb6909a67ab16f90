"""A trained checkpoint records how it was trained (task and criterion sections), and
``dgslm validate`` uses those settings unless its flags override them."""

from __future__ import annotations

import argparse
import json

import pytest
from echo_corpus import make_echo_corpus

from dgslm.cli import train as train_cli
from dgslm.cli.main import main
from dgslm.cli.validate import load_for_validation
from dgslm.lm.checkpoint import load_fairseq_checkpoint
from dgslm.lm.trainer import Trainer
from dgslm.lm.validation import validate

FLAGS = ["--decoder-layers", "1", "--decoder-embed-dim", "16", "--decoder-ffn-embed-dim", "32",
         "--decoder-attention-heads", "2", "--max-tokens", "64", "--num-workers", "0", "--max-update", "1",
         "--sample-break-mode", "eos", "--tokens-per-sample", "48", "--max-target-durations", "3",
         "--next-unit-prediction", "True", "--general-unit-loss-weight", "0.5", "--delayed-duration-target", "False",
         "--channel-weights", "1,0.5", "--main-and-cross-weights", "1,0.25", "--decoder-cross-layers", "1",
         "--sentence-avg", "--disable-validation"]  # fmt: skip


def untimed(results: dict) -> dict[str, float]:
    """The validation metrics without the words-per-second rate."""
    return {k: v for k, v in results["valid"]["metrics"].items() if k != "wps"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = make_echo_corpus(tmp_path_factory.mktemp("echo"), {"train": 4, "valid": 2}, length=40)
    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    save_dir = tmp_path_factory.mktemp("run")
    trainer = Trainer(*train_cli.build_configs(parser.parse_args([str(data), *FLAGS, "--save-dir", str(save_dir)])))
    trainer.train()
    return data, save_dir / "checkpoint_last.pt", trainer


def test_checkpoint_records_task_and_criterion(trained):
    _, checkpoint, _ = trained
    _, _, raw = load_fairseq_checkpoint(checkpoint)
    task, criterion = raw["task"], raw["criterion"]
    assert task["channels"] == "unitA,unitB" and task["channel_weights"] == "1,0.5"
    assert (task["sample_break_mode"], task["tokens_per_sample"], task["max_target_durations"]) == ("eos", 48, 3)
    assert [task[f"{t}_prediction"] for t in ("next_unit", "edge_unit", "duration")] == ["True", "True", "True"]
    assert task["delayed_duration_target"] == "False"
    assert criterion["sentence_avg"] is True and criterion["main_and_cross_weights"] == "1,0.25"
    assert criterion["general_unit_loss_weight"] == 0.5


def test_validate_uses_the_recorded_settings(trained):
    data, checkpoint, trainer = trained
    _, model_cfg, task, criterion = load_for_validation(str(checkpoint))
    assert model_cfg == trainer.model_cfg
    assert task == trainer.task
    assert criterion == trainer.criterion_cfg


def test_validate_flags_override_the_recorded_settings(trained, capsys):
    data, checkpoint, trainer = trained
    valid = type(trainer.train_data).load(
        data, "valid", trainer.model_cfg.channels, trainer.task, trainer.pad, trainer.eos
    )
    expected, _ = validate(trainer.model, valid, trainer.criterion_cfg, max_tokens=64, seed=1, device=trainer.device)
    argv = ["validate", str(data), "--path", str(checkpoint), "--max-tokens", "64", "--json", "--num-workers", "0"]
    assert main(argv) == 0
    assert untimed(json.loads(capsys.readouterr().out)) == pytest.approx(untimed({"valid": {"metrics": expected}}))
    assert main([*argv, "--sample-break-mode", "none", "--tokens-per-sample", "16"]) == 0
    assert untimed(json.loads(capsys.readouterr().out)) != pytest.approx(untimed({"valid": {"metrics": expected}}))
