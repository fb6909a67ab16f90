"""Our converted model folders (safetensors: no pickle, fast to load) and the conversion.

Layout written by ``dgslm convert --out DIR`` (and read by :mod:`dgslm.pipeline.resolve`):

- ``DIR/hubert/``: ``model.safetensors`` (HuBERT, positional-conv weight norm folded),
  ``config.json`` (``{"format": "dgslm.hubert", "config": HubertConfig, "layer": L}``) and
  ``kmeans.safetensors`` (the k-means centres, key ``cluster_centers``);
- ``DIR/speech_dlm/``: :func:`dgslm.lm.checkpoint.save_pretrained` (``model.safetensors``,
  ``config.json``, ``dict.txt``);
- ``DIR/hifigan/``: ``model.safetensors`` (generator, weight norm folded) and the original
  ``config.json``.

Every folder is written beside its destination and renamed into place, so a failed
conversion leaves no half-written folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from dgslm.encoder.features import HubertFeatures
from dgslm.encoder.hubert import Hubert, HubertConfig
from dgslm.encoder.hubert_checkpoint import load_hubert
from dgslm.encoder.kmeans import KMeansQuantizer, load_centers, save_centers
from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.errors import DgslmError
from dgslm.lm.checkpoint import save_pretrained
from dgslm.lm.hub import SpeechDLM
from dgslm.pipeline.resolve import CONFIG, KMEANS, WEIGHTS, is_converted
from dgslm.vocoder.checkpoint import check_shapes, load_generator
from dgslm.vocoder.config import VocoderConfig
from dgslm.vocoder.generator import UnitGenerator
from dgslm.vocoder.unit_vocoder import UnitVocoder

logger = logging.getLogger(__name__)

HUBERT_FORMAT = "dgslm.hubert"


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``folder``; on success it replaces ``folder``."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        yield tmp
        _default_permissions(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _default_permissions(folder: Path) -> None:
    """Give ``folder`` and its files the umask's permissions (temporary files are private)."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise DgslmError("no such file", path) from None
    except Exception as err:  # safetensors raises its own error types on corrupt files
        raise DgslmError(f"cannot read weights: {str(err).splitlines()[0]}", path) from None


# ---- HuBERT + k-means --------------------------------------------------------------------


def save_hubert_folder(folder: str | os.PathLike, model: Hubert, centers, layer: int) -> None:
    """Write a HuBERT, its k-means centres and the layer they belong to into ``folder``."""
    model.check_layer(layer)
    with atomic_folder(folder) as tmp:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": HUBERT_FORMAT})
        meta = {"format": HUBERT_FORMAT, "version": 1, "config": dataclasses.asdict(model.cfg), "layer": layer}
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
        save_centers(tmp / KMEANS, centers)


def load_hubert_folder(folder: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Hubert, int]:
    """(HuBERT in eval mode, its k-means layer) from a converted folder."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / CONFIG).read_text())
        if meta.get("format") != HUBERT_FORMAT:
            raise DgslmError(f"not a HuBERT config (format {meta.get('format')!r})", folder / CONFIG)
        values = dict(meta["config"])
        values["conv_layers"] = tuple(tuple(int(x) for x in layer) for layer in values["conv_layers"])
        cfg, layer = HubertConfig(**values), int(meta["layer"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DgslmError(f"bad HuBERT config: {err}", folder / CONFIG) from None
    model = Hubert(cfg)
    try:
        model.load_state_dict(_read_safetensors(folder / WEIGHTS))
    except RuntimeError as err:
        raise DgslmError(f"weights do not match the config: {str(err).splitlines()[0]}", folder / WEIGHTS) from None
    return model.to(device).eval(), layer


def load_unit_encoder(
    hubert: str | os.PathLike, km: str | os.PathLike, layer: int, device: str | torch.device = "cpu"
) -> UnitEncoder:
    """A UnitEncoder from an original HuBERT ``.pt`` + k-means file, or from a converted folder."""
    if not is_converted(Path(hubert), "hubert"):
        return UnitEncoder.from_pretrained(hubert, km, layer=layer, device=device)
    model, _ = load_hubert_folder(hubert, device)
    try:
        reader = HubertFeatures(model, layer)
    except ValueError as err:
        raise DgslmError(str(err), hubert) from None
    return UnitEncoder(reader, KMeansQuantizer.from_file(km), device)


# ---- unit HiFi-GAN ---------------------------------------------------------------------


def save_vocoder_folder(folder: str | os.PathLike, generator: UnitGenerator) -> None:
    """Write the generator's (weight-norm-free) weights and its ``config.json`` into ``folder``."""
    with atomic_folder(folder) as tmp:
        state = {k: v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
        if any(".parametrizations." in k for k in state):
            raise ValueError("fold the weight norm (remove_weight_norm) before saving")
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "dgslm.hifigan"})
        generator.cfg.save(tmp / CONFIG)


def load_vocoder(
    vocoder: str | os.PathLike, config: str | os.PathLike, device: str | torch.device = "cpu"
) -> UnitVocoder:
    """A UnitVocoder from an original checkpoint + config, or from a converted folder."""
    vocoder = Path(vocoder)
    if not vocoder.is_dir():
        return UnitVocoder.from_pretrained(vocoder, config, device=device)
    generator = UnitGenerator(VocoderConfig.load(config))
    state = _read_safetensors(vocoder / WEIGHTS)
    check_shapes(generator, state, config, vocoder / WEIGHTS)
    generator.load_state_dict(state)
    return UnitVocoder(generator, device, source=str(vocoder))


# ---- conversion --------------------------------------------------------------------------


def convert_speech_dlm(checkpoint: str | os.PathLike, data: str | os.PathLike | None, out: str | os.PathLike) -> Path:
    """Original SpeechDLM ``.pt`` + ``dict.<channel>.txt`` folder (default: the checkpoint's)."""
    checkpoint = Path(checkpoint)
    lm = SpeechDLM.from_pretrained(
        checkpoint, data_name_or_path=Path(data if data is not None else checkpoint.parent).resolve()
    )
    with atomic_folder(out) as tmp:
        save_pretrained(tmp, lm.model, lm.dicts)
    return Path(out)


def convert_hubert(checkpoint: str | os.PathLike, km: str | os.PathLike, layer: int, out: str | os.PathLike) -> Path:
    """Original HuBERT ``.pt`` + k-means file (pickle, .safetensors or .npy) + layer."""
    model = load_hubert(checkpoint)
    centers = load_centers(km)
    if centers.shape[1] != model.cfg.embed_dim:
        raise DgslmError(f"the k-means centres have {centers.shape[1]} dims, the HuBERT {model.cfg.embed_dim}", km)
    try:
        save_hubert_folder(out, model, centers, layer)
    except ValueError as err:
        raise DgslmError(str(err), checkpoint) from None
    return Path(out)


def convert_vocoder(checkpoint: str | os.PathLike, config: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Original unit HiFi-GAN checkpoint (``{'generator': ...}``) + ``config.json``."""
    save_vocoder_folder(out, load_generator(checkpoint, config))
    return Path(out)
