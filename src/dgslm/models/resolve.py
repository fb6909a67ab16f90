"""Which model files the pipeline uses: command-line paths, then the cache, then the bundled demo.

For each of the three models (HuBERT + k-means, SpeechDLM, unit HiFi-GAN), in this order:

1. the path flags (``--hubert``/``--km``, ``--speech-dlm``/``--speech-dlm-data``,
   ``--vocoder``/``--vocoder-cfg``): original files or our converted folders;
2. the cache (``$DGSLM_HOME``, default ``~/.cache/dgslm``): first the converted folders of
   ``dgslm convert`` under ``converted/<model>/``, then the originals of ``dgslm download``;
3. the bundled demo models, ``dgslm/assets/demo/<model>/`` (converted folders), if present,
   unless turned off (``no_demo``, ``--no-demo``, or ``DGSLM_NO_DEMO=1`` in the environment).

Only the models asked for are looked up (``dgslm generate --units`` needs no HuBERT). Only file
names are checked here (no torch import), so a missing model is reported at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from dgslm.errors import DgslmError
from dgslm.model_folder import CONFIG, DEFAULT_LAYER, KMEANS, WEIGHTS, features_folder_type
from dgslm.models.released import BASE_URL, MODELS, cache_dir, find_model_files

CONVERTED = "converted"  # cache sub-folder written by `dgslm convert`
DEMO_DIR = Path(__file__).resolve().parents[1] / "assets" / "demo"
NO_DEMO_ENV = "DGSLM_NO_DEMO"  # set to 1: never fall back to the bundled demo models

# converted folder layouts (dgslm.models.convert writes them)
MARKERS = {"hubert": (WEIGHTS, CONFIG, KMEANS), "speech_dlm": (WEIGHTS, CONFIG), "hifigan": (WEIGHTS, CONFIG)}
LABELS = {"hubert": "HuBERT + k-means", "speech_dlm": "SpeechDLM", "hifigan": "unit HiFi-GAN vocoder"}
FLAGS = {
    "hubert": "--hubert CKPT --km KMEANS [--layer L]",
    "speech_dlm": "--speech-dlm CKPT [--speech-dlm-data DICT_DIR]",
    "hifigan": "--vocoder CKPT --vocoder-cfg CONFIG",
}


@dataclass(frozen=True)
class ModelPaths:
    """The files the pipeline loads; ``sources`` says where each model was found. The HuBERT
    fields are None when the units encoder was not asked for (``models`` without "hubert")."""

    hubert: Path | None  # original HuBERT .pt, or a converted folder
    kmeans: Path | None  # original joblib pickle, .safetensors or .npy centroids
    layer: int | None
    speech_dlm: Path  # original .pt, or a converted folder
    speech_dlm_data: Path | None  # dict.<channel>.txt folder (None for a converted folder)
    vocoder: Path  # original {'generator': ...} checkpoint, or a converted folder
    vocoder_cfg: Path  # config.json
    sources: dict[str, str] = field(default_factory=dict, compare=False)


def is_converted(folder: Path, model: str) -> bool:
    """Whether ``folder`` holds the files of a converted ``model`` folder (see ``MARKERS``)."""
    names = MARKERS[model]
    if model == "hubert" and features_folder_type(folder):  # log-mel/MFCC units: no HuBERT weights
        names = (CONFIG, KMEANS)
    return folder.is_dir() and all((folder / name).is_file() for name in names)


def converted_layer(folder: Path) -> int | None:
    """The HuBERT layer recorded in a converted HuBERT folder's config.json."""
    try:
        return int(json.loads((folder / CONFIG).read_text())["layer"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _existing(path: str | os.PathLike, flag: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise DgslmError(f"no such file or folder (given by {flag})", path)
    return path


def _hubert_flags(flags: Mapping[str, Any]) -> dict | None:
    if flags["km"] and not flags["hubert"]:
        raise DgslmError("--km needs --hubert (the HuBERT checkpoint the k-means was learned on)")
    if not flags["hubert"]:
        return None
    hubert = _existing(flags["hubert"], "--hubert")
    if flags["km"]:
        kmeans = _existing(flags["km"], "--km")
    elif is_converted(hubert, "hubert"):
        kmeans = hubert / KMEANS
    else:
        raise DgslmError("--hubert needs --km (the k-means file of the units), unless it is a converted folder")
    return {"hubert": hubert, "kmeans": kmeans, "layer": converted_layer(hubert)}


def _speech_dlm_flags(flags: Mapping[str, Any]) -> dict | None:
    if flags["speech_dlm_data"] and not flags["speech_dlm"]:
        raise DgslmError("--speech-dlm-data needs --speech-dlm")
    if not flags["speech_dlm"]:
        return None
    lm = _existing(flags["speech_dlm"], "--speech-dlm")
    if is_converted(lm, "speech_dlm"):
        return {"speech_dlm": lm, "speech_dlm_data": None}
    if lm.is_dir():
        raise DgslmError(f"not a converted SpeechDLM folder (needs {WEIGHTS} and {CONFIG}); give the .pt file", lm)
    data = _existing(flags["speech_dlm_data"], "--speech-dlm-data") if flags["speech_dlm_data"] else lm.parent
    if not any(data.glob("dict.*.txt")):
        raise DgslmError("no dict.<channel>.txt files here; give the dictionary folder with --speech-dlm-data", data)
    return {"speech_dlm": lm, "speech_dlm_data": data}


def _vocoder_flags(flags: Mapping[str, Any]) -> dict | None:
    if flags["vocoder_cfg"] and not flags["vocoder"]:
        raise DgslmError("--vocoder-cfg needs --vocoder")
    if not flags["vocoder"]:
        return None
    vocoder = _existing(flags["vocoder"], "--vocoder")
    if vocoder.is_dir() and not is_converted(vocoder, "hifigan"):
        raise DgslmError(f"not a converted vocoder folder (needs {WEIGHTS} and {CONFIG}); give the checkpoint", vocoder)
    beside = (vocoder if vocoder.is_dir() else vocoder.parent) / CONFIG
    if flags["vocoder_cfg"]:
        config = _existing(flags["vocoder_cfg"], "--vocoder-cfg")
    elif beside.is_file():
        config = beside
    else:
        raise DgslmError(f"no {CONFIG} beside the vocoder; give it with --vocoder-cfg", vocoder)
    return {"vocoder": vocoder, "vocoder_cfg": config}


def from_flags(model: str, flags: Mapping[str, Any]) -> dict | None:
    """The paths of ``model`` given by the path flags (keys: hubert, km, speech_dlm,
    speech_dlm_data, vocoder, vocoder_cfg), completed with their defaults; None if not given."""
    return {"hubert": _hubert_flags, "speech_dlm": _speech_dlm_flags, "hifigan": _vocoder_flags}[model](flags)


def _from_folder(model: str, folder: Path) -> dict:
    """The paths of a converted folder."""
    if model == "hubert":
        return {"hubert": folder, "kmeans": folder / KMEANS, "layer": converted_layer(folder)}
    if model == "speech_dlm":
        return {"speech_dlm": folder, "speech_dlm_data": None}
    return {"vocoder": folder, "vocoder_cfg": folder / CONFIG}


def from_download(model: str, files: dict[str, Path]) -> dict:
    """The paths of the released files in the cache."""
    if model == "hubert":
        return {"hubert": files["checkpoint"], "kmeans": files["kmeans"], "layer": None}
    if model == "speech_dlm":
        return {"speech_dlm": files["checkpoint"], "speech_dlm_data": files["checkpoint"].parent}
    return {"vocoder": files["checkpoint"], "vocoder_cfg": files["config"]}


def _candidates(model: str, flags: dict, cache: Path, demo: Path | None) -> Iterator[tuple[str, dict | None]]:
    """(source, paths or None) for ``model``, in the resolution order (no demo when ``demo`` is
    None); lazy, so the first hit wins."""
    yield "flags", from_flags(model, flags)
    if is_converted(folder := cache / CONVERTED / model, model):
        yield f"cache {folder}", _from_folder(model, folder)
    if files := find_model_files(cache)[model]:
        yield f"cache {cache / MODELS[model].folder}", from_download(model, files)
    if demo is not None and is_converted(folder := demo / model, model):
        yield f"demo {folder}", _from_folder(model, folder)


def missing_message(missing: list[str], cache: Path) -> str:
    """One line: which models are missing and exactly how to get each of them."""
    how = []
    for model in missing:
        released = MODELS[model]
        files = ", ".join(urljoin(BASE_URL, f"{released.folder}/{name}") for name in released.files.values())
        how.append(f"{LABELS[model]}: {files} -> {cache / released.folder}/ (or {FLAGS[model]})")
    return (
        f"model files not found: {', '.join(LABELS[m] for m in missing)}. "
        f"Run `dgslm download --models {','.join(missing)}` to fetch them into {cache}, "
        f"or fetch them by hand, or give local paths: {'; '.join(how)}"
    )


def resolve_model_paths(
    hubert: str | os.PathLike | None = None,
    km: str | os.PathLike | None = None,
    layer: int | None = None,
    speech_dlm: str | os.PathLike | None = None,
    speech_dlm_data: str | os.PathLike | None = None,
    vocoder: str | os.PathLike | None = None,
    vocoder_cfg: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    demo: str | os.PathLike | None = None,
    models: Collection[str] = tuple(MARKERS),
    no_demo: bool = False,
) -> ModelPaths:
    """Find each of ``models`` ("hubert", "speech_dlm", "hifigan"): flags > cache (converted,
    then downloaded) > bundled demo.

    ``demo`` defaults to the bundled :data:`DEMO_DIR`; ``no_demo`` (or ``DGSLM_NO_DEMO=1``) skips
    it. Raises one DgslmError naming every missing model, the ``dgslm download`` command, the URLs
    and cache paths, and the path flags."""
    if not {"speech_dlm", "hifigan"} <= set(models) <= set(MARKERS):
        raise ValueError(f"models must be speech_dlm, hifigan and optionally hubert, got {sorted(models)}")
    cache = Path(cache) if cache is not None else cache_dir()
    no_demo = no_demo or os.environ.get(NO_DEMO_ENV, "").strip() not in ("", "0")
    demo = None if no_demo else Path(demo) if demo is not None else DEMO_DIR
    flags = dict(hubert=hubert, km=km, speech_dlm=speech_dlm, speech_dlm_data=speech_dlm_data,
                 vocoder=vocoder, vocoder_cfg=vocoder_cfg)  # fmt: skip
    found: dict = {"hubert": None, "kmeans": None, "layer": None}
    sources: dict[str, str] = {}
    missing = []
    for model in (m for m in MARKERS if m in models):
        for source, paths in _candidates(model, flags, cache, demo):
            if paths:
                found.update(paths)
                sources[model] = source
                break
        else:
            missing.append(model)
    if missing:
        raise DgslmError(missing_message(missing, cache))
    if found["hubert"] is not None:
        found["layer"] = layer if layer is not None else found["layer"] or DEFAULT_LAYER
    return ModelPaths(**found, sources=sources)
