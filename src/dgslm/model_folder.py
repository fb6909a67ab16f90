"""Our model folders: ``model.safetensors`` (weights, no pickle, fast to load) + ``config.json``.

Importing this module imports no torch (the path resolution of :mod:`dgslm.models.resolve`
only needs the file names); the readers and writers import safetensors when called.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dgslm.errors import DgslmError
from dgslm.fileio import atomic_path, atomic_write

if TYPE_CHECKING:
    from torch import Tensor

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
KMEANS = "kmeans.safetensors"  # the k-means centres in a converted HuBERT folder
DEFAULT_LAYER = 12  # the released k-means was learned on HuBERT layer 12


def save_weights(path: str | os.PathLike, state: Mapping[str, Tensor], fmt: str) -> None:
    """Write ``state`` (moved to the CPU) as safetensors, with ``{"format": fmt}`` metadata, atomically."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": fmt})


def load_weights(path: str | os.PathLike) -> dict[str, Tensor]:
    """A safetensors file's tensors; DgslmError naming ``path`` when missing or unreadable."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise DgslmError("no such file", path) from None
    except Exception as err:  # safetensors raises its own error types on corrupt files
        raise DgslmError(f"cannot read weights: {str(err).splitlines()[0]}", path) from None


def write_config(path: str | os.PathLike, meta: Mapping[str, Any]) -> None:
    """``meta`` as indented JSON, atomically."""
    with atomic_write(path) as handle:
        json.dump(meta, handle, indent=2)
        handle.write("\n")


def read_config(path: str | os.PathLike, fmt: str | None = None) -> dict[str, Any]:
    """The JSON object of ``path`` (which must say ``"format": fmt`` when ``fmt`` is given);
    DgslmError naming the file (and line) otherwise."""
    try:
        with open(path, encoding="utf-8") as handle:
            meta = json.load(handle)
    except FileNotFoundError:
        raise DgslmError("no such file", path) from None
    except json.JSONDecodeError as err:
        raise DgslmError(f"invalid JSON: {err.msg}", path, err.lineno) from None
    except (OSError, UnicodeDecodeError) as err:
        raise DgslmError(f"cannot read the config: {err}", path) from None
    if not isinstance(meta, dict):
        raise DgslmError("the config must be a JSON object", path)
    if fmt is not None and meta.get("format") != fmt:
        raise DgslmError(f"not a {fmt} config (format {meta.get('format')!r})", path)
    return meta


FEATURES_FORMAT = "dgslm.features"  # a unit folder without HuBERT: log-mel/MFCC + k-means


def features_folder_type(folder: str | os.PathLike) -> str | None:
    """The feature type ("logmel", "mfcc") of a feature-only unit folder (``config.json`` with
    ``"format": "dgslm.features"`` + ``kmeans.safetensors``), else None."""
    try:
        meta = json.loads((Path(folder) / CONFIG).read_text())
    except (OSError, ValueError):
        return None
    return meta.get("feature_type") if isinstance(meta, dict) and meta.get("format") == FEATURES_FORMAT else None
