"""Unit HiFi-GAN checkpoints in the original layout: ``torch.save({'generator': state_dict})``
with weight-norm ``weight_g`` / ``weight_v`` pairs, loaded without running code from the file;
and our converted folders: ``model.safetensors`` (weight norm folded) + the original ``config.json``."""

from __future__ import annotations

import os
import re

import torch

from dgslm.errors import DgslmError
from dgslm.fileio import atomic_folder, atomic_path
from dgslm.model_check import build_checked, require_count
from dgslm.model_folder import CONFIG, WEIGHTS, load_weights, save_weights
from dgslm.safe_pickle import safe_torch_load
from dgslm.vocoder.config import VocoderConfig
from dgslm.vocoder.generator import UnitGenerator
from dgslm.weight_norm import fold_weight_norm, norm_except_dim

_PARAM_KEY = re.compile(r"\.parametrizations\.weight\.original([01])$")
_LEGACY_KEY = re.compile(r"\.weight_([gv])$")
VOCODER_FORMAT = "dgslm.hifigan"


def read_generator_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The ``generator`` state dict of an original (or our) vocoder checkpoint, as stored, or
    the folded weights of a converted folder."""
    if os.path.isdir(path):
        return load_weights(os.path.join(path, WEIGHTS))
    obj = safe_torch_load(path)  # allow-listed globals only: never runs code from the file
    state = obj.get("generator") if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DgslmError("not a unit HiFi-GAN checkpoint (expected {'generator': state_dict})", path)
    return state


def fold_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each ``X.weight_g``/``X.weight_v`` pair by ``X.weight = g * v / ||v||`` (norm over
    every dim but 0, as ``weight_norm(dim=0)`` computes)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = _LEGACY_KEY.search(key)
        if match is None:
            out[key] = value
        elif f"{key[: match.start()]}.weight_{'g' if match.group(1) == 'v' else 'v'}" not in state:
            out[key] = value  # an unpaired half: reported as an unexpected name
        elif match.group(1) == "v":
            prefix = key[: match.start()]
            out[f"{prefix}.weight"] = fold_weight_norm(state[f"{prefix}.weight_g"], value)
    return out


def legacy_state_dict(model: UnitGenerator) -> dict[str, torch.Tensor]:
    """The generator's state dict with weight norm as ``weight_g``/``weight_v`` (the original's
    names); a model without the parametrisation gets g = ||w||, v = w."""
    state = {}
    for key, value in model.state_dict().items():
        match = _PARAM_KEY.search(key)
        if match is not None:
            key = key[: match.start()] + (".weight_g" if match.group(1) == "0" else ".weight_v")
        state[key] = value.detach().cpu().clone()
    if not any(k.endswith(".weight_g") for k in state):
        for conv_name in _weight_norm_conv_names(model):
            w = state.pop(f"{conv_name}.weight")
            state[f"{conv_name}.weight_g"] = norm_except_dim(w)
            state[f"{conv_name}.weight_v"] = w
    return state


def _weight_norm_conv_names(model: UnitGenerator) -> list[str]:
    names = {id(m): n for n, m in model.named_modules()}
    return [names[id(conv)] for conv in model.weight_norm_convs()]


def to_parametrized(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename ``weight_g``/``weight_v`` to torch's weight-norm parametrisation names."""
    return {
        _LEGACY_KEY.sub(lambda m: ".parametrizations.weight.original" + ("0" if m.group(1) == "g" else "1"), k): v
        for k, v in state.items()
    }


def load_generator(
    checkpoint_path: str | os.PathLike, config_path: str | os.PathLike | None = None, weight_norm: bool = False
) -> UnitGenerator:
    """Build the generator from ``config.json`` (default: the one in a converted folder) and load
    the checkpoint (original file or converted folder) strictly.

    Inference (default): weight norm folded into plain weights. ``weight_norm=True`` keeps the
    parametrisation (to continue training from an original checkpoint)."""
    if config_path is None:
        if not os.path.isdir(checkpoint_path):
            raise DgslmError("the vocoder's config.json is needed with an original checkpoint", checkpoint_path)
        config_path = os.path.join(checkpoint_path, CONFIG)
    cfg = VocoderConfig.load(config_path)
    state = read_generator_state(checkpoint_path)
    try:
        folded = fold_state_dict(state)
    except RuntimeError as err:
        raise DgslmError(f"inconsistent weight-norm tensors: {str(err).splitlines()[0]}", checkpoint_path) from None
    stages = len(cfg.upsample_rates)
    require_count("upsampling stages", stages, folded, "ups", config_path)
    require_count("residual blocks", stages * len(cfg.resblock_kernel_sizes), folded, "resblocks", config_path)
    model = build_checked(lambda: UnitGenerator(cfg), folded, config_path, checkpoint_path)
    if weight_norm and any(_LEGACY_KEY.search(k) for k in state):  # keep the stored g and v exactly
        model.apply_weight_norm().load_state_dict(to_parametrized(state))
    else:
        model.load_state_dict(folded)
        if weight_norm:
            model.apply_weight_norm()
    return model


def save_generator(path: str | os.PathLike, model: UnitGenerator, config_path: str | os.PathLike | None = None) -> None:
    """Write ``{'generator': state_dict}`` with weight_g/weight_v atomically (and ``config.json``
    when ``config_path`` is given), loadable by the original fairseq tools."""
    # unwrap DDP / compiled modules
    model = getattr(model, "module", model)
    with atomic_path(path) as tmp:
        torch.save({"generator": legacy_state_dict(model)}, tmp)
    if config_path is not None:
        model.cfg.save(config_path)


def save_generator_folder(folder: str | os.PathLike, model: UnitGenerator) -> None:
    """Write a converted folder (replaced atomically): the folded weights and ``config.json``."""
    model = getattr(model, "module", model)
    state = model.state_dict()
    if any(".parametrizations." in k for k in state):
        raise ValueError("fold the weight norm (remove_weight_norm) before saving")
    with atomic_folder(folder) as tmp:
        save_weights(tmp / WEIGHTS, state, VOCODER_FORMAT)
        model.cfg.save(tmp / CONFIG)
