"""The ``SpeechDLM`` hub: loading like the original's ``from_pretrained``, encoding, forward."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from dgslm.errors import DgslmError
from dgslm.lm.checkpoint import save_pretrained
from dgslm.lm.hub import SpeechDLM
from dgslm.safe_pickle import safe_torch_load


@pytest.fixture(scope="module")
def hub(reference):
    folder = reference / "speechdlm" / "checkpoint"
    return SpeechDLM.from_pretrained(folder, checkpoint_file="speech_dlm_small.pt", data_name_or_path=folder).eval()


@pytest.fixture(scope="module")
def inputs(reference):
    return json.loads((reference / "speechdlm" / "inputs.json").read_text())


def test_loads_like_the_original(hub):
    assert hub.channels == ("unitA", "unitB") and hub.cfg.layers == 4
    assert set(hub.dicts) == {"unitA", "unitB"} and len(hub.dictionary) == 504
    assert hub.dictionary is hub.dicts["unitA"]
    assert hub.device == torch.device("cpu") and not hub.model.training


def test_encode_matches_the_original_src_tokens(hub, inputs):
    for sequence in inputs["sequences"].values():
        tokens = hub.encode(sequence["units"])
        assert tokens.dtype == torch.long
        assert tokens.tolist() == [sequence["src_tokens"][channel] for channel in hub.channels]


def test_forward_units_gives_every_head(reference, hub, inputs):
    data = np.load(reference / "speechdlm" / "forward_rand43.npz")
    out = hub.forward_units(inputs["sequences"]["rand43"]["units"])
    for c, channel in enumerate(hub.channels):
        assert np.abs(out.logits[0, c, 0].numpy() - data[f"pred_token_logits__{channel}__{channel}"]).max() < 1e-5
        assert np.abs(out.durations[0, c, 0].numpy() - data[f"pred_duration__{channel}__{channel}"]).max() < 1e-5


def test_data_path_relative_to_the_model_folder(reference, tmp_path, inputs):
    source = reference / "speechdlm" / "checkpoint"
    shutil.copy(source / "speech_dlm_small_cross.pt", tmp_path / "checkpoint_best.pt")
    (tmp_path / "data").mkdir()
    for channel in ("unitA", "unitB"):
        shutil.copy(source / f"dict.{channel}.txt", tmp_path / "data" / f"dict.{channel}.txt")
    hub = SpeechDLM.from_pretrained(tmp_path, data_name_or_path="./data")
    data = np.load(reference / "speechdlm" / "cross_forward_seed_example.npz")
    out = hub.eval().forward_units(inputs["sequences"]["seed_example"]["units"])
    assert out.logits.shape == (1, 2, 2, 16, 504)
    assert np.abs(out.logits[0, 1, 1].numpy() - data["pred_token_logits__unitB__unitA"]).max() < 1e-5
    with pytest.raises(DgslmError, match="dict.unitA.txt"):
        SpeechDLM.from_pretrained(tmp_path)  # no dictionaries beside the checkpoint


def test_channels_come_from_the_dictionaries_when_the_cfg_has_none(reference, tmp_path):
    source = reference / "speechdlm" / "checkpoint"
    ckpt = safe_torch_load(source / "speech_dlm_small.pt")
    ckpt["cfg"]["task"]["channels"] = None
    torch.save(ckpt, tmp_path / "checkpoint_best.pt")
    for channel in ("unitB", "unitA"):
        shutil.copy(source / "dict.unitA.txt", tmp_path / f"dict.{channel}.txt")
    assert SpeechDLM.from_pretrained(tmp_path).channels == ("unitA", "unitB")
    (tmp_path / "dict.unitB.txt").unlink()
    with pytest.raises(DgslmError, match="at least 2 channels"):
        SpeechDLM.from_pretrained(tmp_path)


def test_our_folder_loads_through_the_same_api(hub, tmp_path, inputs):
    save_pretrained(tmp_path, hub.model, hub.dicts)
    again = SpeechDLM.from_pretrained(tmp_path).eval().to("cpu")
    units = inputs["sequences"]["seed_example"]["units"]
    assert torch.equal(again.forward_units(units).logits, hub.forward_units(units).logits)
    assert again.cpu() is again


def test_encode_errors_and_unknown_units(hub):
    tokens = hub.encode({"unitA": "7 999", "unitB": "7 7"})
    assert tokens[0].tolist() == [2, 258, hub.dictionary.unk()]
    with pytest.raises(DgslmError, match="different lengths"):
        hub.encode({"unitA": "7 7 7", "unitB": "7"})
    with pytest.raises(DgslmError, match="channels"):
        hub.encode({"unitA": "7"})


def test_unit_values_and_ids_map_through_the_dictionaries(hub, inputs):
    units = next(iter(inputs["sequences"].values()))["units"]
    ids = hub.encode_prompt(units)
    values = hub.unit_values(ids)
    assert values.tolist() == [[int(u) for u in units[channel].split()] for channel in hub.channels]
    assert torch.equal(hub.unit_ids(values), ids)
    missing = 10**6  # a cluster number the dictionaries lack is a free position, as "<unk>" in a string
    assert hub.unit_ids(torch.tensor([[missing, -1], [3, 3]]))[0].tolist() == [hub.dictionary.unk()] * 2
    assert hub.unit_values(torch.tensor([[hub.dictionary.bos()], [hub.dictionary.unk()]])).tolist() == [[-1], [-1]]
    with pytest.raises(DgslmError, match="^x.txt:4: unit 'zz' is not in the dictionary"):
        hub.encode_prompt({"unitA": "7 zz", "unitB": "7 7"}, strict=True, path="x.txt", line=4)
