"""Converting the original checkpoints into our safetensors folders (no pickle, fast to load).

Layout written by ``dgslm convert --out DIR`` (and read by :mod:`dgslm.models.resolve`):

- ``DIR/hubert/``: :func:`dgslm.encoder.hubert_checkpoint.save_hubert_folder`
  (``model.safetensors``, ``config.json``, ``kmeans.safetensors``);
- ``DIR/speech_dlm/``: :func:`dgslm.lm.checkpoint.save_pretrained` (``model.safetensors``,
  ``config.json``, ``dict.txt``);
- ``DIR/hifigan/``: :func:`dgslm.vocoder.checkpoint.save_generator_folder`
  (``model.safetensors``, weight norm folded, and the original ``config.json``).

``UnitEncoder.from_pretrained``, ``SpeechDLM.from_pretrained`` and ``UnitVocoder.from_pretrained``
load these folders as well as the originals. Every folder is written beside its destination
and renamed into place, so a failed conversion leaves no half-written folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from dgslm.encoder.hubert_checkpoint import load_hubert, save_hubert_folder
from dgslm.encoder.kmeans import load_centers
from dgslm.errors import DgslmError
from dgslm.fileio import atomic_folder
from dgslm.lm.checkpoint import save_pretrained
from dgslm.lm.hub import SpeechDLM
from dgslm.vocoder.checkpoint import load_generator, save_generator_folder


def convert_speech_dlm(checkpoint: str | os.PathLike, data: str | os.PathLike | None, out: str | os.PathLike) -> Path:
    """Original SpeechDLM ``.pt`` + ``dict.<channel>.txt`` folder (default: the checkpoint's)."""
    checkpoint = Path(checkpoint)
    lm = SpeechDLM.from_pretrained(
        checkpoint, data_name_or_path=Path(data if data is not None else checkpoint.parent).resolve()
    )
    with atomic_folder(out) as tmp:
        save_pretrained(tmp, lm.model, lm.dicts, lm.block_length)
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
    save_generator_folder(out, load_generator(checkpoint, config))
    return Path(out)
