"""Model configurations that ask for absurd sizes: refused in one line, before any allocation."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from dgslm.errors import DgslmError
from dgslm.lm.checkpoint import load_fairseq_checkpoint, load_model, save_pretrained
from dgslm.lm.model import SpeechDLMModel
from dgslm.units.dictionary import Dictionary
from dgslm.vocoder.checkpoint import load_generator


@pytest.fixture(scope="module")
def lm_folder(reference, tmp_path_factory):
    """Our folder of the reference SpeechDLM (small), to be damaged by each test."""
    ckpt = reference / "speechdlm" / "checkpoint"
    (pt,) = sorted(ckpt.glob("*.pt"))[:1]
    cfg, state, _ = load_fairseq_checkpoint(pt)
    model = SpeechDLMModel(cfg)
    model.load_state_dict(state, strict=False)
    dictionary = Dictionary.load(next(ckpt.glob("dict*.txt")))
    folder = tmp_path_factory.mktemp("lm") / "model"
    save_pretrained(folder, model, dictionary)
    return folder


def _damaged_lm(lm_folder, tmp_path, **changes):
    folder = tmp_path / "model"
    shutil.copytree(lm_folder, folder)
    meta = json.loads((folder / "config.json").read_text())
    meta["config"].update(changes)
    (folder / "config.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"embed_dim": 1_048_576, "input_dim": 1_048_576, "output_dim": 1_048_576}, "does not match"),
        ({"attention_heads": 0}, "attention_heads must be >= 1"),
        ({"layers": -3}, "layers must be >= 1"),
        ({"layers": 10_000_000}, "the weights hold"),
        ({"ffn_dim": "2048"}, "ffn_dim must be an integer"),
        ({"vocab_size": 1e12}, "vocab_size must be an integer"),
        ({"max_positions": 10**9}, "over the limit"),
        ({"dropout": float("nan")}, "dropout must be >= 0"),
    ],
)
def test_absurd_lm_config_is_refused_before_allocation(lm_folder, tmp_path, changes, message):
    folder = _damaged_lm(lm_folder, tmp_path, **changes)
    with pytest.raises(DgslmError, match=message) as err:
        load_model(folder)
    assert str(folder) in str(err.value) and "\n" not in str(err.value)


def test_undamaged_lm_folder_still_loads(lm_folder):
    assert isinstance(load_model(lm_folder), SpeechDLMModel)


def _damaged_vocoder(reference, tmp_path, **changes):
    cfg = json.loads((reference / "vocoder" / "config.json").read_text())
    cfg.update(changes)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"num_embeddings": 10**10}, "does not match the checkpoint"),
        ({"num_embeddings": 1e10}, "num_embeddings must be an integer"),
        ({"upsample_initial_channel": -32}, "upsample_initial_channel must be >= 1"),
        ({"resblock_kernel_sizes": [3] * 100_000, "resblock_dilation_sizes": [[1]] * 100_000}, "the weights hold"),
        ({"resblock_dilation_sizes": [[1, 3, "5"]] * 3}, "resblock_dilation_sizes must be an integer"),
        ({"upsample_rates": 5}, "upsample_rates must be a non-empty list"),
    ],
)
def test_absurd_vocoder_config_is_refused_before_allocation(reference, tmp_path, changes, message):
    config = _damaged_vocoder(reference, tmp_path, **changes)
    with pytest.raises(DgslmError, match=message) as err:
        load_generator(reference / "vocoder" / "hifigan_vocoder", config)
    assert str(config) in str(err.value) and "\n" not in str(err.value)


def test_unpaired_weight_norm_half_is_one_line_error(reference, tmp_path):
    state = torch.load(reference / "vocoder" / "hifigan_vocoder", weights_only=True)["generator"]
    del state["conv_pre.weight_g"]
    path = tmp_path / "g.pt"
    torch.save({"generator": state}, path)
    with pytest.raises(DgslmError, match="unexpected conv_pre.weight_v"):
        load_generator(path, reference / "vocoder" / "config.json")
