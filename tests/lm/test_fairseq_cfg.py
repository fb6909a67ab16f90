"""The original's cfg is read and written in one place, each field from one configuration."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from dgslm.errors import DgslmError
from dgslm.lm.checkpoint import load_fairseq_checkpoint
from dgslm.lm.config import CriterionConfig, SpeechDLMConfig, TaskConfig
from dgslm.lm.fairseq_cfg import parse_bool, read_criterion, read_model, read_task, write_sections
from dgslm.safe_pickle import safe_torch_load


@pytest.mark.parametrize("value, expected", [(True, True), ("True", True), (" false ", False), ("FALSE", False)])
def test_parse_bool_reads_fairseq_booleans(value, expected):
    assert parse_bool(value) is expected


@pytest.mark.parametrize("value", ["yes", "", "1", None])
def test_parse_bool_refuses_anything_else(value):
    with pytest.raises(ValueError, match="expected True or False"):
        parse_bool(value)


def test_each_field_is_written_from_its_one_owner():
    model = SpeechDLMConfig(main_and_cross_weights=(1.0, 0.5), delayed_duration_target=False, duration_loss_weight=2.0)
    task = TaskConfig(tokens_per_sample=48, sample_break_mode="eos", max_target_durations=3)
    criterion = CriterionConfig(channel_weights=(1.0, 0.25), sentence_avg=True)
    out = write_sections(model, task, criterion)
    # the original repeats some model fields in its task and criterion sections: the same value
    assert out["model"]["main_and_cross_weights"] == out["criterion"]["main_and_cross_weights"] == "1,0.5"
    assert out["model"]["delayed_duration_target"] == out["task"]["delayed_duration_target"] == "False"
    assert out["criterion"]["duration_loss_weight"] == 2.0 and out["task"]["channel_weights"] == "1,0.25"
    assert (out["task"]["tokens_per_sample"], out["model"]["tokens_per_sample"]) == (48, model.max_positions)
    assert read_model(out, model.vocab_size) == model
    assert read_task(out) == task and read_criterion(out, 2) == criterion


def test_base_cfg_fills_only_what_no_configuration_holds(reference):
    raw = safe_torch_load(reference / "speechdlm" / "checkpoint" / "speech_dlm_small.pt")["cfg"]
    model = replace(read_model(raw, 504), dropout=0.3)
    out = write_sections(model, base=raw)
    assert out["model"]["dropout"] == 0.3  # ours wins over the base
    assert out["task"]["seed"] == raw["task"]["seed"] == 100501  # a field we do not hold is kept
    assert read_task(out) == read_task(raw)  # the base's task when none is given
    internal = {**raw, "criterion": {"_name": "some_internal_criterion", "include_edge_loss": True}}
    assert "include_edge_loss" not in write_sections(model, base=internal)["criterion"]  # another _name: not kept


def test_a_malformed_boolean_in_a_checkpoint_names_the_file(reference, tmp_path):
    ckpt = safe_torch_load(reference / "speechdlm" / "checkpoint" / "speech_dlm_small.pt")
    ckpt["cfg"]["task"]["edge_unit_prediction"] = "maybe"
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(DgslmError, match=r"bad\.pt.*expected True or False, got 'maybe'"):
        load_fairseq_checkpoint(tmp_path / "bad.pt")
