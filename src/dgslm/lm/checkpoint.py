"""SpeechDLM weights on disk: the original's fairseq ``.pt`` files and our folders.

* ``.pt`` (read and written in the original's layout, so fairseq tools can read ours): read
  with the restricted unpickler of :mod:`dgslm.safe_pickle`, never running code.
* our folder: ``model.safetensors`` (tied weights stored once) + ``config.json`` +
  ``dict.txt`` (or ``dict.<channel>.txt`` when the channels' dictionaries differ).

Both may record the training block length (``tokens_per_sample`` of the task: the positions the
model saw in training), read by :func:`training_block_length`.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dgslm.errors import DgslmError
from dgslm.fileio import atomic_path
from dgslm.lm.config import CriterionConfig, SpeechDLMConfig, TaskConfig
from dgslm.lm.fairseq_cfg import read_model, write_cfg
from dgslm.lm.model import SpeechDLMModel
from dgslm.model_check import build_checked, require_count
from dgslm.model_folder import CONFIG, WEIGHTS, load_weights, read_config, save_weights, write_config
from dgslm.safe_pickle import safe_torch_load
from dgslm.units.dictionary import Dictionary

FORMAT = "dgslm.speech_dlm"
TIED_KEY = "output_projection.0.weight"
_DROPPED = re.compile(r"^(version|embed_positions\._float_tensor|embed_positions\.weights)$")


# ---- the original's .pt --------------------------------------------------------------------


def from_fairseq_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``decoder.*`` names -> ours: prefix stripped, bookkeeping buffers dropped, stacked
    ``in_proj`` split into q|k|v, floating tensors cast to float32."""
    out: dict[str, Tensor] = {}
    for name, tensor in state.items():
        name = name.removeprefix("decoder.")
        if _DROPPED.match(name):
            continue
        if tensor.is_floating_point():
            tensor = tensor.float()
        if name.endswith((".in_proj_weight", ".in_proj_bias")):
            base, kind = name.rsplit(".in_proj_", 1)
            for proj, part in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3)):
                out[f"{base}.{proj}.{kind}"] = part
            continue
        out[name] = tensor
    return out


def load_fairseq_checkpoint(path: str | os.PathLike) -> tuple[SpeechDLMConfig, dict[str, Tensor], dict[str, Any]]:
    """An original (or our exported) ``.pt`` -> (config, our state dict, the raw cfg dict).

    Every hyper-parameter comes from the cfg (``args`` of legacy files becomes a dict); the
    vocabulary size comes from the embedding. Only allow-listed globals are unpickled."""
    return parse_fairseq_checkpoint(safe_torch_load(path), path)


def parse_fairseq_checkpoint(
    ckpt: Any, path: str | os.PathLike
) -> tuple[SpeechDLMConfig, dict[str, Tensor], dict[str, Any]]:
    """The loaded contents of a ``.pt`` -> (config, our state dict, the raw cfg dict)."""
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), Mapping):
        raise DgslmError("not a fairseq checkpoint: no 'model' state dict", path)
    raw_cfg = ckpt.get("cfg") or ckpt.get("args")
    if not isinstance(raw_cfg, Mapping):
        raise DgslmError("checkpoint has neither 'cfg' nor 'args'", path)
    state = from_fairseq_state_dict(ckpt["model"])
    if "embed_tokens.weight" not in state:
        raise DgslmError("not a SpeechDLM checkpoint: no decoder.embed_tokens.weight", path)
    try:
        cfg = read_model(raw_cfg, vocab_size=state["embed_tokens.weight"].shape[0])
    except (ValueError, TypeError) as err:
        raise DgslmError(f"unusable model cfg: {err}", path) from None
    return cfg, state, dict(raw_cfg)


def build_model(
    cfg: SpeechDLMConfig, state: Mapping[str, Tensor], path: str | os.PathLike | None = None
) -> SpeechDLMModel:
    """A model with exactly ``state`` loaded (strict; a tied head may be left out). Its sizes
    are checked against ``state`` before it is allocated (see :mod:`dgslm.model_check`)."""
    state = dict(state)
    if cfg.share_input_output_embed and "embed_tokens.weight" in state:
        state.setdefault(TIED_KEY, state["embed_tokens.weight"])
    require_count("layers", cfg.layers, state, "layers", path)
    model = build_checked(lambda: SpeechDLMModel(cfg), state, path)
    model.load_state_dict(state)
    model.tie_weights()
    return model


def to_fairseq_state_dict(model: SpeechDLMModel) -> OrderedDict[str, Tensor]:
    """Our parameters as the original's CPU state dict: ``decoder.version`` first, every name
    ``decoder.``-prefixed, a tied head present and sharing storage with the embedding."""
    out: OrderedDict[str, Tensor] = OrderedDict(version=torch.tensor([3.0]))
    copies: dict[tuple, Tensor] = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.device, tensor.data_ptr(), tuple(tensor.shape), tensor.stride(), tensor.dtype)
        if key not in copies:
            copies[key] = tensor.detach().cpu().clone()
        out[name] = copies[key]
    return OrderedDict((f"decoder.{k}", v) for k, v in out.items())


def save_fairseq_checkpoint(
    path: str | os.PathLike,
    model: SpeechDLMModel,
    task: TaskConfig | None = None,
    criterion: CriterionConfig | None = None,
    extra: dict[str, Any] | None = None,
    base_cfg: Mapping[str, Any] | None = None,
) -> None:
    """Write ``path`` atomically in the original's layout: ``{args: None, cfg, model,
    criterion: None, optimizer_history, task_state, extra_state}`` plus ``extra``'s top-level
    entries (e.g. ``last_optimizer_state``). The cfg is :func:`dgslm.lm.fairseq_cfg.write_cfg`
    of ``model.cfg``, ``task`` and ``criterion`` (how the model was trained), ``base_cfg`` (e.g.
    the raw cfg of a loaded original) supplying what they do not hold."""
    full_cfg = write_cfg(model.cfg, task, criterion, base_cfg)
    ckpt: dict[str, Any] = {
        "args": None,
        "cfg": full_cfg,
        "model": to_fairseq_state_dict(model),
        "criterion": None,
        "optimizer_history": [
            {
                "criterion_name": "SpeechDLMCriterion",
                "optimizer_name": "FairseqAdam",
                "lr_scheduler_state": {"best": None},
                "num_updates": 0,
            }
        ],
        "task_state": {},
        "extra_state": {
            "metrics": {},
            "previous_training_time": 0.0,
            "train_iterator": {"version": 2, "epoch": 1, "iterations_in_epoch": 0, "shuffle": True},
            "val_loss": None,
        },
    }
    ckpt.update(extra or {})
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


# ---- our folders ---------------------------------------------------------------------------


def save_pretrained(
    folder: str | os.PathLike,
    model: SpeechDLMModel,
    dictionary: Dictionary | Mapping[str, Dictionary],
    tokens_per_sample: int | None = None,
) -> None:
    """Write ``model.safetensors``, ``config.json`` (with the training block length
    ``tokens_per_sample`` when known) and the dictionaries into ``folder``."""
    folder = Path(folder)
    cfg = model.cfg
    dicts = dictionary if isinstance(dictionary, Mapping) else {ch: dictionary for ch in cfg.channels}
    if set(dicts) != set(cfg.channels):
        raise DgslmError(f"dictionaries for {sorted(dicts)} but the model has channels {list(cfg.channels)}", folder)
    state = dict(model.state_dict())
    if cfg.share_input_output_embed:
        del state[TIED_KEY]
    save_weights(folder / WEIGHTS, state, FORMAT)
    block = {} if tokens_per_sample is None else {"tokens_per_sample": int(tokens_per_sample)}
    write_config(folder / CONFIG, {"format": FORMAT, "version": 1, "config": cfg.to_dict(), **block})
    first = dicts[cfg.channels[0]]
    if all(d.symbols == first.symbols for d in dicts.values()):
        first.save(folder / "dict.txt")
    else:
        for channel, d in dicts.items():
            d.save(folder / f"dict.{channel}.txt")


def load_model_dictionaries(folder: str | os.PathLike, cfg: SpeechDLMConfig) -> dict[str, Dictionary]:
    """``dict.<channel>.txt`` for each of the model's channels, else a shared ``dict.txt``;
    each must have the model's vocabulary size."""
    folder = Path(folder)
    dicts = {}
    for channel in cfg.channels:
        path = folder / f"dict.{channel}.txt"
        if not path.is_file():
            path = folder / "dict.txt"
        if not path.is_file():
            raise DgslmError(f"no dict.{channel}.txt or dict.txt", folder)
        dicts[channel] = Dictionary.load(path)
        if len(dicts[channel]) != cfg.vocab_size:
            raise DgslmError(f"{len(dicts[channel])} entries but the model has {cfg.vocab_size}", path)
    return dicts


def is_pretrained_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is one of our model folders (``config.json`` + ``model.safetensors``)."""
    return (Path(path) / CONFIG).is_file() and (Path(path) / WEIGHTS).is_file()


def read_pretrained(
    folder: str | os.PathLike,
) -> tuple[SpeechDLMConfig, dict[str, Tensor], dict[str, Dictionary]]:
    """One of our folders -> (config, state dict, {channel: Dictionary})."""
    folder = Path(folder)
    meta = read_config(folder / CONFIG, FORMAT)
    try:
        cfg = SpeechDLMConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise DgslmError(f"bad model config: {err}", folder / CONFIG) from None
    return cfg, load_weights(folder / WEIGHTS), load_model_dictionaries(folder, cfg)


def training_block_length(source: str | os.PathLike | Mapping[str, Any]) -> int | None:
    """The training block length a model's files record: ``tokens_per_sample`` of one of our
    folders' ``config.json`` (``source`` a folder) or of an original cfg's task (``source`` the
    raw cfg of :func:`load_fairseq_checkpoint`); None when they do not say."""
    if isinstance(source, Mapping):
        task = source.get("task") if isinstance(source.get("task"), Mapping) else source
        value = task.get("tokens_per_sample")
        where: str | os.PathLike = "the checkpoint's task cfg"
    else:
        where = Path(source) / CONFIG
        value = read_config(where, FORMAT).get("tokens_per_sample")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit() or int(value) < 1:
        raise DgslmError(f"tokens_per_sample must be a positive integer, got {value!r}", where)
    return int(value)


def load_pretrained(folder: str | os.PathLike) -> tuple[SpeechDLMModel, dict[str, Dictionary]]:
    """One of our folders -> (model, {channel: Dictionary})."""
    cfg, state, dicts = read_pretrained(folder)
    return build_model(cfg, state, Path(folder) / WEIGHTS), dicts


def load_model(path: str | os.PathLike) -> SpeechDLMModel:
    """A model from an original ``.pt`` file or from one of our folders."""
    if Path(path).is_dir():
        return load_pretrained(path)[0]
    cfg, state, _ = load_fairseq_checkpoint(path)
    return build_model(cfg, state, path)
