"""Load original fairseq HuBERT checkpoints (``hubert_fisher.pt``, ``hubert_base_ls960.pt``, ...)
without fairseq and without running code from the pickle.

The pickle is read by :mod:`dgslm.safe_pickle` (fairseq/omegaconf objects such as the label
``Dictionary`` in ``task_state`` become inert stand-ins); the config comes from ``cfg``
(hydra-era dict) or ``args`` (older ``argparse.Namespace``).
Training-only tensors (``mask_emb``, ``final_proj``, ``label_embs_concat``...) are ignored and
the positional conv's weight norm is folded into a plain weight.

Our converted HuBERT folder (``dgslm convert``): ``model.safetensors`` (the :class:`Hubert`
state dict), ``config.json`` (``{"format": "dgslm.hubert", "version": 1, "config": HubertConfig,
"layer": L}``, L the layer the k-means was learned on) and ``kmeans.safetensors`` (its centres).
"""

from __future__ import annotations

import ast
import dataclasses
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dgslm.encoder.hubert import Hubert, HubertConfig
from dgslm.encoder.kmeans import save_centers
from dgslm.errors import DgslmError
from dgslm.fileio import atomic_folder
from dgslm.model_check import build_checked, check_numbers, require_count
from dgslm.model_folder import CONFIG, KMEANS, WEIGHTS, load_weights, read_config, save_weights, write_config
from dgslm.safe_pickle import safe_torch_load
from dgslm.weight_norm import fold_weight_norm

logger = logging.getLogger(__name__)

TRAINING_ONLY = re.compile(r"^(mask_emb|label_embs(_concat)?|final_proj\..*|target_glu\..*)$")
POS_CONV = "encoder.pos_conv.0."
HUBERT_FORMAT = "dgslm.hubert"


def load_pickled_checkpoint(path: str | os.PathLike) -> dict:
    """The checkpoint dict, read with the restricted unpickler (configs as plain dicts)."""
    state = safe_torch_load(path)
    if not isinstance(state, dict) or "model" not in state:
        raise DgslmError("not a fairseq checkpoint (no 'model' entry)", path)
    return state


def parse_conv_layers(spec: str | list) -> tuple[tuple[int, int, int], ...]:
    """Evaluate fairseq's ``conv_feature_layers`` string (lists/tuples of ints joined with
    ``+`` and ``*``) with a tiny AST evaluator; never ``eval``."""

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = value(node.left), value(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(f"unsupported element {ast.dump(node)}")

    layers = value(ast.parse(spec, mode="eval").body) if isinstance(spec, str) else spec
    return tuple((int(c), int(k), int(s)) for c, k, s in layers)


def _sections(state: dict) -> tuple[dict, dict]:
    """The (model, task) config sections of a ``cfg`` or ``args`` checkpoint."""
    cfg = state.get("cfg")
    if isinstance(cfg, dict) and cfg.get("model") is not None:
        return cfg["model"], dict(cfg.get("task") or {})
    args = state.get("args")
    if isinstance(args, dict):  # an argparse.Namespace, made plain by the loader
        return args, args
    return {}, {}


def config_from_checkpoint(state: dict) -> HubertConfig:
    """A :class:`HubertConfig` from the checkpoint config, with base defaults for missing
    fields and the layer count / widths cross-checked against the weights."""
    model, task = _sections(state)
    weights = state["model"]
    default = HubertConfig()
    cfg = HubertConfig(
        conv_layers=parse_conv_layers(model.get("conv_feature_layers", default.conv_layers)),
        conv_bias=bool(model.get("conv_bias", default.conv_bias)),
        extractor_mode=str(model.get("extractor_mode", default.extractor_mode)),
        embed_dim=int(model.get("encoder_embed_dim", default.embed_dim)),
        ffn_dim=int(model.get("encoder_ffn_embed_dim", default.ffn_dim)),
        layers=int(model.get("encoder_layers", default.layers)),
        heads=int(model.get("encoder_attention_heads", default.heads)),
        layer_norm_first=bool(model.get("layer_norm_first", default.layer_norm_first)),
        conv_pos=int(model.get("conv_pos", default.conv_pos)),
        conv_pos_groups=int(model.get("conv_pos_groups", default.conv_pos_groups)),
        normalize=bool(task.get("normalize", default.normalize)),
        sample_rate=int(task.get("sample_rate", default.sample_rate)),
    )
    # what the weights show wins over the config: extractor mode, depth and widths
    if "feature_extractor.conv_layers.0.2.1.weight" in weights:
        cfg.extractor_mode = "layer_norm"
    elif "feature_extractor.conv_layers.0.2.weight" in weights:
        cfg.extractor_mode = "default"
    indices = {int(m.group(1)) for k in weights if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    if indices:
        cfg.layers = max(indices) + 1
    if "encoder.layers.0.fc1.weight" in weights:
        cfg.ffn_dim, cfg.embed_dim = weights["encoder.layers.0.fc1.weight"].shape
    if str(model.get("activation_fn", "gelu")) != "gelu":
        raise ValueError(f"unsupported activation_fn {model['activation_fn']!r} (only gelu)")
    return cfg


def convert_state_dict(weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """fairseq HuBERT weights -> our names: drop training-only tensors, fold weight norm, fp32."""
    out = {k: v.float() for k, v in weights.items() if not TRAINING_ONLY.match(k) and not k.startswith(POS_CONV)}
    pos = {k[len(POS_CONV) :]: v.float() for k, v in weights.items() if k.startswith(POS_CONV)}
    g = pos.get("weight_g", pos.get("parametrizations.weight.original0"))
    v = pos.get("weight_v", pos.get("parametrizations.weight.original1"))
    out["encoder.pos_conv.weight"] = pos["weight"] if "weight" in pos else fold_weight_norm(g, v, dim=2)
    out["encoder.pos_conv.bias"] = pos["bias"]
    return out


def checked_config(cfg: HubertConfig) -> HubertConfig:
    """``cfg`` if every size is a positive integer, else ValueError naming the field."""
    sizes = ("conv_layers", "embed_dim", "ffn_dim", "layers", "heads", "conv_pos", "conv_pos_groups", "sample_rate")
    check_numbers(vars(cfg), {name: (int, 1) for name in sizes})
    return cfg


def load_hubert(path: str | os.PathLike, device: str | torch.device = "cpu") -> Hubert:
    """Build and load a :class:`Hubert`, in eval mode, from an original fairseq HuBERT ``.pt``
    file or from one of our converted folders."""
    if Path(path).is_dir():
        return load_hubert_folder(path, device)[0]
    state = load_pickled_checkpoint(path)
    try:
        cfg = checked_config(config_from_checkpoint(state))
        weights = convert_state_dict(state["model"])
        require_count("layers", cfg.layers, weights, "encoder.layers", path)
        model = build_checked(lambda: Hubert(cfg), weights, path)
        model.load_state_dict(weights, strict=True)
    except (KeyError, ValueError, RuntimeError, TypeError, ZeroDivisionError) as err:
        raise DgslmError(f"not a HuBERT checkpoint this loader understands: {str(err).splitlines()[0]}", path) from None
    logger.info(
        "loaded HuBERT %s: %d layers, width %d, %s",
        path,
        cfg.layers,
        cfg.embed_dim,
        "pre-norm" if cfg.layer_norm_first else "post-norm",
    )
    return model.to(device).eval()


def save_hubert_folder(folder: str | os.PathLike, model: Hubert, centers, layer: int) -> None:
    """Write a HuBERT, the k-means centres of its layer ``layer`` and that layer into ``folder``
    (replaced atomically)."""
    model.check_layer(layer)
    with atomic_folder(folder) as tmp:
        save_weights(tmp / WEIGHTS, model.state_dict(), HUBERT_FORMAT)
        write_config(tmp / CONFIG, {"format": HUBERT_FORMAT, "version": 1, "config": dataclasses.asdict(model.cfg),
                                    "layer": layer})  # fmt: skip
        save_centers(tmp / KMEANS, centers)


def hubert_folder_config(folder: str | os.PathLike) -> tuple[HubertConfig, int]:
    """(config, k-means layer) recorded in a converted folder's ``config.json``."""
    path = Path(folder) / CONFIG
    meta = read_config(path, HUBERT_FORMAT)
    try:
        values = dict(meta["config"])
        values["conv_layers"] = tuple(tuple(int(x) for x in layer) for layer in values["conv_layers"])
        return checked_config(HubertConfig(**values)), int(meta["layer"])
    except (ValueError, KeyError, TypeError) as err:
        raise DgslmError(f"bad HuBERT config: {err}", path) from None


def load_hubert_folder(folder: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Hubert, int]:
    """(HuBERT in eval mode, its k-means layer) from a converted folder."""
    cfg, layer = hubert_folder_config(folder)
    weights = Path(folder) / WEIGHTS
    state = load_weights(weights)
    require_count("layers", cfg.layers, state, "encoder.layers", Path(folder) / CONFIG)
    model = build_checked(lambda: Hubert(cfg), state, Path(folder) / CONFIG, weights)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise DgslmError(f"weights do not match the config: {str(err).splitlines()[0]}", weights) from None
    return model.to(device).eval(), layer
