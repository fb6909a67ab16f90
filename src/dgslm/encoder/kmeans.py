"""k-means unit quantiser: nearest centre by squared distance, in torch (CPU or GPU).

Centroid files: our ``.safetensors`` (key ``cluster_centers``, [K, D] float32) or ``.npy``
load without unpickling. The original's joblib-pickled scikit-learn ``MiniBatchKMeans``
(``hubert_fisher_km_500.bin``, any scikit-learn version) is read with a restricted unpickler
that builds no scikit-learn object and runs no code; convert it once with :func:`convert`.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dgslm.errors import DgslmError
from dgslm.fileio import atomic_path

logger = logging.getLogger(__name__)

CENTERS_KEY = "cluster_centers"
ASSIGN_BATCH = 65_536  # frames per distance matrix


class _Estimator:
    """Inert stand-in for the pickled scikit-learn estimator: keeps its attribute dict."""

    def __setstate__(self, state: Any) -> None:
        self.__dict__.update(state if isinstance(state, dict) else {})


def _check_array_state(state: Any) -> None:
    """Refuse an array header unless its dtype is a real ``np.dtype`` instance without objects
    (joblib reads ``state["dtype"].hasobject`` from the object itself, and an object array is
    read with an unrestricted ``pickle.load``) and its class is a plain ndarray."""
    if not isinstance(state, dict):
        raise pickle.UnpicklingError("malformed array header")
    dtype = state.get("dtype")
    if not isinstance(dtype, np.dtype):
        raise pickle.UnpicklingError(f"array dtype is a {type(dtype).__name__}, not a numpy dtype")
    if dtype.hasobject:
        raise pickle.UnpicklingError("object arrays are not allowed")
    if state.get("subclass") not in (np.ndarray, np.memmap):
        raise pickle.UnpicklingError("array subclasses are not allowed")


def _restricted_unpickler() -> type:
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    numpy_globals = {
        ("numpy", "dtype"), ("numpy", "ndarray"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    }  # fmt: skip

    class RestrictedUnpickler(NumpyUnpickler):
        dispatch = NumpyUnpickler.dispatch.copy()

        def find_class(self, module: str, name: str) -> Any:
            if (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
                return NumpyArrayWrapper
            if (module, name) in numpy_globals:
                return super().find_class(module, name)
            if module.startswith("sklearn.cluster") and name.endswith("KMeans"):
                return _Estimator
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}")

        def load_build(self) -> None:
            state, target = self.stack[-1], self.stack[-2]
            if isinstance(target, NumpyArrayWrapper):
                _check_array_state(state)
            NumpyUnpickler.load_build(self)

        dispatch[pickle.BUILD[0]] = load_build

    return RestrictedUnpickler


def load_kmeans_pickle(path: str | os.PathLike) -> np.ndarray:
    """``cluster_centers_`` of a joblib-pickled scikit-learn (MiniBatch)KMeans, read without
    building the estimator or running code from the file."""
    from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

    logger.warning(
        "%s is a pickle: pickles can run code; reading it with a restricted unpickler "
        "(convert it once with `dgslm kmeans --convert`)",
        path,
    )
    try:
        with open(path, "rb") as raw, _validate_fileobject_and_memmap(raw, str(path), None) as (fobj, _):
            obj = _restricted_unpickler()(str(path), fobj, ensure_native_byte_order=True).load()
    except FileNotFoundError:
        raise DgslmError("no such k-means file", path) from None
    except Exception as err:
        raise DgslmError(f"not a joblib k-means pickle: {str(err).splitlines()[0]}", path) from None
    centers = getattr(obj, "cluster_centers_", None)
    if not isinstance(centers, np.ndarray) or centers.ndim != 2:
        raise DgslmError("the pickle holds no 2-D cluster_centers_", path)
    return centers


def load_centers(path: str | os.PathLike) -> np.ndarray:
    """[K, D] float32 centres from ``.safetensors``, ``.npy`` or (otherwise) a joblib pickle."""
    path = Path(path)
    if not path.is_file():
        raise DgslmError("no such k-means file", path)
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        try:
            centers = load_file(str(path))[CENTERS_KEY]
        except Exception as err:
            raise DgslmError(f"no '{CENTERS_KEY}' in this safetensors file ({err})", path) from None
    elif path.suffix == ".npy":
        centers = np.load(path, allow_pickle=False)
    else:
        centers = load_kmeans_pickle(path)
    return np.ascontiguousarray(centers, dtype=np.float32)


def save_centers(path: str | os.PathLike, centers: np.ndarray) -> Path:
    """Write our centroid file (``.safetensors``, or ``.npy`` by suffix), atomically."""
    from safetensors.numpy import save_file

    path = Path(path)
    centers = np.ascontiguousarray(centers, dtype=np.float32)
    with atomic_path(path) as tmp:
        if path.suffix == ".npy":
            with open(tmp, "wb") as handle:
                np.save(handle, centers)
        else:
            save_file({CENTERS_KEY: centers}, str(tmp))
    return path


def save_sklearn_pickle(path: str | os.PathLike, centers: np.ndarray) -> Path:
    """A joblib-pickled scikit-learn ``MiniBatchKMeans`` with these centres, for the
    original's tools (``ApplyKmeans`` / ``km.predict``)."""
    import joblib
    from sklearn.cluster import MiniBatchKMeans

    centers = np.ascontiguousarray(centers, dtype=np.float32)
    km = MiniBatchKMeans(
        n_clusters=len(centers),
        init="k-means++",
        max_iter=100,
        batch_size=10000,
        tol=0.0,
        max_no_improvement=100,
        n_init=20,
        reassignment_ratio=0.0,
        compute_labels=False,
    )
    km.cluster_centers_ = centers
    km.n_features_in_ = centers.shape[1]
    km._n_threads = 1
    with atomic_path(path) as tmp:
        joblib.dump(km, tmp)
    return Path(path)


def convert(pickle_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Convert an original k-means pickle into our centroid file."""
    return save_centers(out_path, load_kmeans_pickle(pickle_path))


class KMeansQuantizer(nn.Module):
    """Assigns each frame the index of its nearest centre (ties: lowest index), with the
    original ``ApplyKmeans`` arithmetic: ||x||^2 - 2 x.c + ||c||^2 in float32."""

    def __init__(self, centers: Tensor | np.ndarray):
        super().__init__()
        centers = torch.as_tensor(np.asarray(centers, dtype=np.float32))
        self.register_buffer("centers_t", centers.T.contiguous())
        self.register_buffer("center_norms", centers.pow(2).sum(1, keepdim=True).T)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> KMeansQuantizer:
        return cls(load_centers(path))

    @property
    def n_clusters(self) -> int:
        return self.centers_t.shape[1]

    @property
    def dim(self) -> int:
        return self.centers_t.shape[0]

    @torch.inference_mode()
    def forward(self, feats: Tensor, batch_size: int = ASSIGN_BATCH) -> Tensor:
        """[..., D] features -> [...] int64 unit ids."""
        if feats.shape[-1] != self.dim:
            raise ValueError(f"features have {feats.shape[-1]} dims but the k-means centres have {self.dim}")
        flat = feats.reshape(-1, self.dim).to(self.centers_t.device, torch.float32)
        units = [
            (x.pow(2).sum(1, keepdim=True) - 2 * (x @ self.centers_t) + self.center_norms).argmin(dim=1)
            for x in flat.split(batch_size)
        ]
        return (
            torch.cat(units).reshape(feats.shape[:-1]) if units else flat.new_zeros(feats.shape[:-1], dtype=torch.long)
        )
