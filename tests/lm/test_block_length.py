"""The training block length a SpeechDLM's files record, and the context window of None that uses it."""

from __future__ import annotations

import json

import pytest

from dgslm.errors import DgslmError
from dgslm.lm.checkpoint import save_fairseq_checkpoint, save_pretrained
from dgslm.lm.config import TaskConfig
from dgslm.lm.generate import GenerationConfig
from dgslm.lm.hub import SpeechDLM
from dgslm.models.convert import convert_speech_dlm
from dgslm.models.resolve import DEMO_DIR

PROMPT = {"unitA": "5 5 9 9 9 12", "unitB": "7 7 7 3 3 1"}


@pytest.fixture(scope="module")
def hub(reference):
    folder = reference / "speechdlm" / "checkpoint"
    return SpeechDLM.from_pretrained(folder, checkpoint_file="speech_dlm_small.pt", data_name_or_path=folder)


def test_block_length_of_an_original_checkpoint_is_its_task_tokens_per_sample(hub, tmp_path):
    assert hub.block_length == 256 == hub.cfg.max_positions  # the reference file's task says 256
    save_fairseq_checkpoint(tmp_path / "checkpoint_best.pt", hub.model, TaskConfig(tokens_per_sample=96))
    for channel, dictionary in hub.dicts.items():
        dictionary.save(tmp_path / f"dict.{channel}.txt")
    assert SpeechDLM.from_pretrained(tmp_path).block_length == 96
    # `dgslm convert` keeps it in the folder's config.json
    convert_speech_dlm(tmp_path / "checkpoint_best.pt", tmp_path, tmp_path / "folder")
    assert json.loads((tmp_path / "folder" / "config.json").read_text())["tokens_per_sample"] == 96
    assert SpeechDLM.from_pretrained(tmp_path / "folder").block_length == 96


def test_block_length_of_a_folder_defaults_to_the_positions_and_is_checked(hub, tmp_path):
    save_pretrained(tmp_path, hub.model, hub.dicts)
    assert "tokens_per_sample" not in json.loads((tmp_path / "config.json").read_text())
    assert SpeechDLM.from_pretrained(tmp_path).block_length == hub.cfg.max_positions
    meta = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**meta, "tokens_per_sample": "ten"}))
    with pytest.raises(DgslmError, match=r"config\.json: tokens_per_sample must be a positive integer, got 'ten'"):
        SpeechDLM.from_pretrained(tmp_path)


def test_the_demo_records_its_training_blocks():
    block = json.loads((DEMO_DIR / "bundle.json").read_text())["tokens_per_sample"]  # what make_bundle.py read
    lm = SpeechDLM.from_pretrained(DEMO_DIR / "speech_dlm")
    assert lm.block_length == block == 512 < lm.cfg.max_positions


def test_a_window_of_none_is_the_model_block_and_outgrows_its_positions(hub, tmp_path):
    save_pretrained(tmp_path, hub.model, hub.dicts, tokens_per_sample=64)
    lm = SpeechDLM.from_pretrained(tmp_path)
    assert lm.resolve_window(GenerationConfig(context_window=None)).context_window == 64
    assert lm.resolve_window(GenerationConfig(context_window=0)).context_window == 0  # off stays off
    options = dict(max_len_b=300, beam=1, seed=5, units_only=True)
    auto = lm.sample(PROMPT, context_window=None, **options)
    assert auto == lm.sample(PROMPT, context_window=64, **options)
    assert all(len(units.split()) == 300 > lm.cfg.max_positions for units in auto.values())
    assert all(len(units.split()) == 255 for units in lm.sample(PROMPT, context_window=0, **options).values())
    with pytest.raises(ValueError, match="resolve it"):
        GenerationConfig(context_window=None).window(256)
