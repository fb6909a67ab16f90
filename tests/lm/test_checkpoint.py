"""Checkpoint files: the original's .pt (as they are, without fairseq), export back, our folders,
and the restricted unpickler."""

from __future__ import annotations

import argparse
import enum
import io
import os
import pickle
import re
import sys
import types
import typing
from collections import OrderedDict

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from dgslm.errors import DgslmError
from dgslm.lm.checkpoint import (
    build_model,
    load_fairseq_checkpoint,
    load_model,
    load_pretrained,
    save_fairseq_checkpoint,
    save_pretrained,
)
from dgslm.safe_pickle import safe_pickle_load, safe_torch_load
from dgslm.units.dictionary import Dictionary

LAYOUT_LINE = re.compile(r"^\s+(decoder\.\S+)\s+\(([\d, ]*)\)\s+(\w+)(\s+# same storage as (\S+))?$")


def _ckpt(reference, name="speech_dlm_small.pt"):
    return reference / "speechdlm" / "checkpoint" / name


def _layout(path):
    """{name: (shape, dtype, shared_with)} from checkpoint_layout.txt."""
    out = {}
    for line in path.read_text().splitlines():
        match = LAYOUT_LINE.match(line)
        if match:
            shape = tuple(int(x) for x in match.group(2).replace(" ", "").split(",") if x)
            out[match.group(1)] = (shape, match.group(3), match.group(5))
    return out


@pytest.mark.parametrize(
    "name, layout",
    [("speech_dlm_small.pt", "checkpoint_layout.txt"), ("speech_dlm_small_cross.pt", "cross_checkpoint_layout.txt")],
)
def test_original_parameters_load_exactly(reference, name, layout):
    expected = _layout(reference / "speechdlm" / layout)
    raw = safe_torch_load(_ckpt(reference, name))["model"]
    assert list(raw) == list(expected)  # the layout file lists every tensor, in order
    for key, (shape, dtype, shared) in expected.items():
        assert tuple(raw[key].shape) == shape and str(raw[key].dtype) == f"torch.{dtype}"
        if shared:
            assert raw[key].untyped_storage().data_ptr() == raw[shared].untyped_storage().data_ptr()
    cfg, state, raw_cfg = load_fairseq_checkpoint(_ckpt(reference, name))
    assert set(state) == {k.removeprefix("decoder.") for k in expected} - {"version"}
    model = build_model(cfg, state)
    ours = model.state_dict()
    assert set(ours) == set(state)
    for key in state:
        assert torch.equal(ours[key], raw[f"decoder.{key}"])
    assert (model.output_projection[0].weight is model.embed_tokens.weight) == cfg.share_input_output_embed
    assert cfg.attention_heads == raw_cfg["model"]["decoder_attention_heads"] == 4


def test_cfg_values_come_from_the_checkpoint(reference):
    small, _, _ = load_fairseq_checkpoint(_ckpt(reference))
    assert (small.layers, small.cross_layers, small.embed_dim, small.ffn_dim) == (4, 2, 64, 128)
    assert small.share_input_output_embed and small.delayed_duration_target and not small.cross_prediction
    assert small.max_positions == 256 and small.channels == ("unitA", "unitB")
    cross, _, _ = load_fairseq_checkpoint(_ckpt(reference, "speech_dlm_small_cross.pt"))
    assert (cross.embed_dim, cross.input_dim, cross.output_dim) == (32, 48, 40)
    assert cross.main_and_cross_weights == (1.0, 0.5) and cross.prediction_heads == 2
    assert cross.next_unit_prediction and not cross.delayed_duration_target and not cross.share_input_output_embed
    assert cross.general_unit_loss_weight == 0.5


def _outputs(model, seed=0):
    shape = (2, model.cfg.num_channels, 9)
    tokens = torch.randint(4, model.cfg.vocab_size, shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.eval()(tokens)


@pytest.mark.parametrize("name", ["speech_dlm_small.pt", "speech_dlm_small_cross.pt"])
def test_export_to_original_layout_round_trips(reference, tmp_path, name):
    cfg, state, raw_cfg = load_fairseq_checkpoint(_ckpt(reference, name))
    model = build_model(cfg, state)
    out = tmp_path / "exported.pt"
    save_fairseq_checkpoint(
        out, model, extra={"last_optimizer_state": {"state": {}, "param_groups": []}}, base_cfg=raw_cfg
    )
    original, ours = safe_torch_load(_ckpt(reference, name)), safe_torch_load(out)
    assert set(ours) == set(original)
    assert ours["args"] is None and ours["criterion"] is None and ours["task_state"] == {}
    assert list(ours["model"]) == list(original["model"])  # decoder.version and tied head included
    for key, tensor in original["model"].items():
        assert torch.equal(ours["model"][key], tensor) and ours["model"][key].dtype == tensor.dtype
    if cfg.share_input_output_embed:
        a, b = ours["model"]["decoder.output_projection.0.weight"], ours["model"]["decoder.embed_tokens.weight"]
        assert a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    for section in ("model", "task", "criterion"):  # original field names and string booleans
        assert ours["cfg"][section] == original["cfg"][section]
    assert set(ours["cfg"]) == set(original["cfg"])
    assert ours["optimizer_history"][0]["criterion_name"] == "SpeechDLMCriterion"
    # ... and loads back to the same parameters and outputs
    cfg2, state2, _ = load_fairseq_checkpoint(out)
    assert cfg2 == cfg and state2.keys() == state.keys()
    reloaded = build_model(cfg2, state2)
    assert all(torch.equal(state[k], state2[k]) for k in state)
    assert torch.equal(_outputs(model).logits, _outputs(reloaded).logits)


def test_pretrained_folder_round_trips(reference, tmp_path):
    model = load_model(_ckpt(reference))
    dictionary = Dictionary.load(_ckpt(reference).parent / "dict.unitA.txt")
    save_pretrained(tmp_path / "m", model, dictionary)
    assert sorted(os.listdir(tmp_path / "m")) == ["config.json", "dict.txt", "model.safetensors"]
    assert "output_projection.0.weight" not in load_file(tmp_path / "m" / "model.safetensors")  # stored once
    loaded, dicts = load_pretrained(tmp_path / "m")
    assert loaded.cfg == model.cfg and dicts["unitB"] == dictionary
    assert loaded.output_projection[0].weight is loaded.embed_tokens.weight
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    assert torch.equal(_outputs(model).logits, _outputs(load_model(tmp_path / "m")).logits)


def test_pretrained_folder_with_per_channel_dictionaries(reference, tmp_path):
    model = load_model(_ckpt(reference, "speech_dlm_small_cross.pt"))
    a = Dictionary.load(_ckpt(reference).parent / "dict.unitA.txt")
    b = Dictionary.load(_ckpt(reference).parent / "dict.unitA.txt")
    b.symbols[4], b.symbols[5] = b.symbols[5], b.symbols[4]
    save_pretrained(tmp_path, model, {"unitA": a, "unitB": b})
    assert {"dict.unitA.txt", "dict.unitB.txt"} <= set(os.listdir(tmp_path))
    loaded, dicts = load_pretrained(tmp_path)
    assert dicts["unitA"] == a and dicts["unitB"].symbols[4] == a.symbols[5]
    assert torch.equal(_outputs(model).durations, _outputs(loaded).durations)


# ---- files the released checkpoint may look like ---------------------------------------------


def _stand_in_modules(monkeypatch):
    """Classes named like omegaconf's and fairseq's, pickled the way the real ones are
    (NEWOBJ + ``__getstate__`` dict), living in fake modules for the time of the test."""

    def module(name, **classes):
        mod = types.ModuleType(name)
        for cls_name, cls in classes.items():
            cls.__module__, cls.__qualname__, cls.__name__ = name, cls_name, cls_name
            setattr(mod, cls_name, cls)
        monkeypatch.setitem(sys.modules, name, mod)
        return mod

    class Metadata:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    class ContainerMetadata(Metadata):
        pass

    class Node:
        def __init__(self, value, key, parent):
            self._val, self._parent = value, parent
            self._metadata = Metadata(ref_type=typing.Any, object_type=None, optional=True, key=key, flags=None)

    class AnyNode(Node):
        pass

    class EnumNode(Node):
        pass

    class Container:
        def __init__(self, content, parent=None, object_type=None):
            self._parent, self._flags_cache = parent, None
            self._metadata = ContainerMetadata(
                ref_type=typing.Any,
                object_type=object_type,
                key_type=typing.Any,
                element_type=typing.Any,
                optional=True,
                flags={"struct": True},
            )
            self._content = content

        def __getstate__(self):  # like omegaconf: the flags cache is not pickled
            state = dict(self.__dict__)
            del state["_flags_cache"]
            return state

    class DictConfig(Container):
        pass

    class ListConfig(Container):
        pass

    class DDPBackend(enum.Enum):
        pytorch_ddp = "pytorch_ddp"

    class CommonConfig:
        pass

    for package in ("omegaconf", "fairseq", "fairseq.dataclass"):
        module(package)
    module("omegaconf.base", Metadata=Metadata, ContainerMetadata=ContainerMetadata)
    module("omegaconf.nodes", AnyNode=AnyNode, EnumNode=EnumNode)
    module("omegaconf.dictconfig", DictConfig=DictConfig)
    module("omegaconf.listconfig", ListConfig=ListConfig)
    module("fairseq.dataclass.constants", DDP_BACKEND_CHOICES=DDPBackend)
    module("fairseq.dataclass.configs", CommonConfig=CommonConfig)

    def to_config(value, key=None, parent=None):
        if isinstance(value, dict):
            node = DictConfig(None, parent, object_type=CommonConfig if key == "common" else dict)
            node._content = {k: to_config(v, k, node) for k, v in value.items()}
            return node
        if isinstance(value, list):
            node = ListConfig(None, parent, object_type=list)
            node._content = [to_config(v, i, node) for i, v in enumerate(value)]
            return node
        if isinstance(value, enum.Enum):
            return EnumNode(value, key, parent)
        return AnyNode(value, key, parent)

    return to_config, DDPBackend


def test_released_style_checkpoint_loads(reference, tmp_path, monkeypatch):
    """fp16 tensors, the old positions buffer, the internal criterion, and the cfg pickled
    as OmegaConf objects (with an interpolation, an enum and typing.Any)."""
    original = safe_torch_load(_ckpt(reference))
    to_config, backend = _stand_in_modules(monkeypatch)
    cfg = {k: v for k, v in original["cfg"].items()}
    cfg["model"] = dict(
        cfg["model"], tokens_per_sample="${task.tokens_per_sample}", duration_prediction="${task.duration_prediction}"
    )
    cfg["criterion"] = {
        "_name": "duration_cross_multichannel_cross_entropy",
        "sentence_avg": False,
        "main_and_cross_weights": "1,0",
        "include_edge_loss": True,
        "edge_loss_weight": 1.0,
        "general_loss_weight": 0.0,
        "duration_loss_weight": 1.0,
    }
    cfg["distributed_training"] = dict(cfg["distributed_training"], ddp_backend=backend.pytorch_ddp)
    cfg["optimizer"] = dict(cfg["optimizer"], lr=[0.0005])
    state = OrderedDict((k, v.half()) for k, v in original["model"].items())
    state["decoder.embed_positions._float_tensor"] = torch.zeros(1)
    path = tmp_path / "speech_dlm_base.pt"
    torch.save(dict(original, cfg=to_config(cfg), model=state), path)

    loaded = safe_torch_load(path)
    assert isinstance(loaded["cfg"], dict) and loaded["cfg"]["model"]["tokens_per_sample"] == 256
    assert loaded["cfg"]["distributed_training"]["ddp_backend"] == "pytorch_ddp"
    assert loaded["cfg"]["optimizer"]["lr"] == [0.0005]
    ours, params, _ = load_fairseq_checkpoint(path)
    reference_cfg, reference_params, _ = load_fairseq_checkpoint(_ckpt(reference))
    assert ours == reference_cfg
    assert params.keys() == reference_params.keys()
    for key, tensor in params.items():
        assert tensor.dtype == torch.float32 and torch.equal(tensor, reference_params[key].half().float())


def test_legacy_args_namespace_becomes_a_dict(reference, tmp_path):
    original = safe_torch_load(_ckpt(reference))
    flat = {k: v for name in ("task", "criterion", "model") for k, v in original["cfg"][name].items()}
    path = tmp_path / "legacy.pt"
    torch.save(dict(original, args=argparse.Namespace(**flat), cfg=None), path)
    cfg, _, raw = load_fairseq_checkpoint(path)
    assert raw["decoder_layers"] == 4 and cfg == load_fairseq_checkpoint(_ckpt(reference))[0]


# ---- the restricted unpickler ------------------------------------------------------------------


class _Evil:
    def __init__(self, call, marker):
        self.call, self.marker = call, marker

    def __reduce__(self):
        if self.call == "system":
            return os.system, (f"touch {self.marker}",)
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("call", ["system", "exec"])
def test_malicious_checkpoints_are_refused(tmp_path, call):
    marker = tmp_path / "pwned"
    pt, raw = tmp_path / "evil.pt", tmp_path / "evil.pkl"
    torch.save({"model": {}, "cfg": _Evil(call, marker)}, pt)
    torch.save({"model": _Evil(call, marker)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    raw.write_bytes(pickle.dumps([1, _Evil(call, marker)]))
    name = "posix.system" if call == "system" else "builtins.exec"
    for path in (pt, tmp_path / "legacy.pt"):
        with pytest.raises(DgslmError, match=rf"refusing to load .*{path.name}: forbidden global {re.escape(name)}"):
            load_fairseq_checkpoint(path)
    with pytest.raises(DgslmError, match="forbidden global"):
        safe_pickle_load(raw)
    assert not marker.exists()


def test_plain_pickles_with_tensors_and_numpy(tmp_path):
    """Tensors inside a plain pickle go through the restricted unpickler too."""
    state = {"size": torch.Size([2, 3]), "t": torch.arange(3.0), "rng": np.random.get_state(), "x": np.float64(1.5)}
    (tmp_path / "state.pkl").write_bytes(pickle.dumps(state, protocol=2))
    loaded = safe_pickle_load(tmp_path / "state.pkl")
    assert loaded["size"] == torch.Size([2, 3]) and isinstance(loaded["size"], torch.Size)
    assert torch.equal(loaded["t"], state["t"]) and loaded["x"] == 1.5
    assert np.array_equal(loaded["rng"][1], state["rng"][1])


def test_unreadable_files_are_user_errors(tmp_path):
    with pytest.raises(DgslmError, match="cannot read"):
        load_fairseq_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(DgslmError, match="junk.pt"):
        load_fairseq_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(DgslmError, match="no 'model'"):
        load_fairseq_checkpoint(tmp_path / "other.pt")


# ---- Truncated or corrupted checkpoint files (zip and legacy torch formats, the vocoder's pickle)
# give the project's one-line error naming the file, never another exception.


@pytest.fixture(scope="module")
def originals(reference) -> dict[str, bytes]:
    zipped = (reference / "speechdlm" / "checkpoint" / "speech_dlm_small_cross.pt").read_bytes()
    legacy = io.BytesIO()
    torch.save(safe_torch_load(reference / "speechdlm" / "checkpoint" / "speech_dlm_small_cross.pt"), legacy,
               _use_new_zipfile_serialization=False)  # fmt: skip
    vocoder = (reference / "vocoder" / "hifigan_vocoder").read_bytes()
    return {"zip": zipped, "legacy": legacy.getvalue(), "vocoder": vocoder}


@st.composite
def damaged(draw, names=("zip", "legacy", "vocoder")):
    """(which file, a truncation point or None, a few (position, byte) replacements)."""
    name = draw(st.sampled_from(names))
    cut = draw(st.one_of(st.none(), st.floats(0, 1, exclude_max=True)))
    edits = draw(st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=4))
    return name, cut, edits


def apply(blob: bytes, cut, edits) -> bytes:
    data = bytearray(blob)
    for where, value in edits:
        data[int(where * len(data))] = value
    return bytes(data if cut is None else data[: int(cut * len(data))])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=damaged())
def test_damaged_checkpoints_are_one_line_errors(originals, tmp_path_factory, case):
    name, cut, edits = case
    path = tmp_path_factory.getbasetemp() / f"damaged_{name}.pt"
    path.write_bytes(apply(originals[name], cut, edits))
    try:
        safe_torch_load(path)
    except DgslmError as err:
        assert "\n" not in str(err) and str(path) in str(err)


@pytest.mark.parametrize("size", [0, 10, 1000, 50_000, 300_000])
def test_truncated_speech_dlm_checkpoint_via_the_cli(reference, tmp_path, capsys, size):
    from dgslm.cli.main import main

    original = reference / "speechdlm" / "checkpoint" / "speech_dlm_small_cross.pt"
    path = tmp_path / "cut.pt"
    path.write_bytes(original.read_bytes()[:size])
    assert main(["validate", str(reference / "speechdlm" / "data-bin"), "--path", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dgslm validate: error:") and "cut.pt" in err[0]
