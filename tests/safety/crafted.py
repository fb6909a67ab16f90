"""Builders of crafted hostile files, made inside the tests (no exploit blob is committed)."""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _body(obj: object) -> bytes:
    """A value's protocol-2 pickle without its PROTO header and STOP."""
    return pickle.dumps(obj, protocol=2)[2:-1]


class _ShellCommand:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def kmeans_dtype_payload(path: Path, marker: Path) -> Path:
    """A joblib k-means pickle whose array wrapper carries a fake dtype: an allowed
    ``sklearn.cluster.KMeans`` stand-in with ``dtype=float32`` and ``hasobject=True``, followed by
    a pickle that runs ``touch marker`` if anything reads the array as an object array."""
    fake_dtype = (
        _global("sklearn.cluster._kmeans", "KMeans") + b")\x81}("
        + _str("dtype") + _body(np.dtype("float32")) + _str("hasobject") + b"\x88" + b"ub"
    )  # fmt: skip
    wrapper = (
        _global("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81}("
        + _str("subclass") + _global("numpy", "ndarray")
        + _str("shape") + b"K\x02K\x02\x86"
        + _str("order") + _str("C")
        + _str("dtype") + fake_dtype
        + _str("allow_mmap") + b"\x89"
        + b"ub"
    )  # fmt: skip
    payload = pickle.dumps(_ShellCommand(f"touch {marker}"), protocol=2)
    head = b"\x80\x02" + _global("sklearn.cluster._kmeans", "MiniBatchKMeans") + b")\x81}(" + _str("cluster_centers_")
    path.write_bytes(head + wrapper + payload + b"ub.")
    return path


@contextlib.contextmanager
def fake_omegaconf() -> Iterator[type]:
    """A class pickled as ``omegaconf.dictconfig.DictConfig`` (omegaconf itself is not needed)."""
    names = ("omegaconf", "omegaconf.dictconfig")
    saved = {name: sys.modules.get(name) for name in names}
    package, module = types.ModuleType(names[0]), types.ModuleType(names[1])

    class DictConfig:
        def __init__(self, content: dict):
            self._content = content

    DictConfig.__module__, DictConfig.__qualname__ = names[1], "DictConfig"
    module.DictConfig = DictConfig
    package.dictconfig = module
    sys.modules.update(dict(zip(names, (package, module))))
    try:
        yield DictConfig
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def shared_dict_dag(levels: int) -> dict:
    """``levels`` nested dicts, each holding the next one twice: 2**levels paths, ``levels`` objects."""
    node: dict = {"leaf": 1}
    for _ in range(levels):
        node = {"a": node, "b": node}
    return node


def dag_checkpoint(path: Path, levels: int = 40) -> Path:
    """A small ``.pt`` whose DictConfig cfg is a DAG of shared dicts (~1.7 KB for 40 levels)."""
    with fake_omegaconf() as DictConfig:
        torch.save({"generator": {}, "cfg": DictConfig(shared_dict_dag(levels))}, path)
    return path


def self_referencing_checkpoint(path: Path) -> Path:
    """A ``.pt`` whose DictConfig content contains itself."""
    with fake_omegaconf() as DictConfig:
        loop: dict = {"name": "x"}
        loop["self"] = loop
        cyclic: list = [1]
        cyclic.append(cyclic)
        torch.save({"cfg": DictConfig(loop), "list": cyclic}, path)
    return path
