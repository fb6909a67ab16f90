"""Load PyTorch ``.pt`` files and pickles without ever running code from them.

A pickle can name any importable callable and call it (``os.system``, ``builtins.exec``...).
:class:`RestrictedUnpickler` resolves only an explicit allow-list of harmless globals
(tensor/storage rebuilders, dtypes, ``OrderedDict``, ``argparse.Namespace``, numpy
scalars/arrays, plain builtin types); any other global raises :class:`DgslmError`
("refusing to load <file>: forbidden global <module>.<name>") before anything is called.

OmegaConf / fairseq / typing objects (a pickled ``DictConfig`` cfg, its nodes, metadata, enum
values, dataclass types) are *never imported*: they become inert stand-ins, which
:func:`to_plain` turns into plain dicts, lists and values (``${a.b}`` interpolations resolved).

API: ``safe_torch_load(path, allow=(), plain=True)`` for ``.pt`` files (zip or legacy format),
``safe_pickle_load(path, allow=(), plain=True)`` for plain pickles; ``allow`` adds
``"module.name"`` globals that the caller vouches for.
"""

from __future__ import annotations

import _compat_pickle
import argparse
import builtins
import collections
import importlib
import importlib.util
import io
import os
import pickle
import re
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import torch

from dgslm.errors import DgslmError

_ALLOWED_NAMES = {
    "collections.OrderedDict",
    "collections.defaultdict",
    "argparse.Namespace",
    "copyreg._reconstructor",
    "_codecs.encode",  # protocol-2 encoding of bytes (numpy scalars)
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._tensor._rebuild_from_type_v2",
    "torch.Tensor",
    "torch.Size",
    "torch.device",
    "torch.nn.parameter.Parameter",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.core.multiarray.scalar",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray.scalar",
    "numpy._core.multiarray._reconstruct",
    "pathlib.Path",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
}
_SAFE_BUILTINS = {
    "dict",
    "list",
    "tuple",
    "set",
    "frozenset",
    "str",
    "bytes",
    "bytearray",
    "int",
    "float",
    "bool",
    "complex",
    "slice",
    "range",
    "object",
    "NoneType",
}
# modules whose globals become inert stand-ins (config containers and type references)
_INERT_MODULES = ("omegaconf", "fairseq", "typing")
_NUMPY_DTYPE_CLASSES = re.compile(r"numpy(\._core|\.core)?\.dtypes\.\w+DType")


class _Forbidden(Exception):
    pass


class _StandIn:
    """An inert object recording what a pickle tried to build (never imported, never run)."""

    args: tuple = ()
    state: Any = None

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args = args
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<inert {self.__module__}.{type(self).__name__}>"


_stand_ins: dict[str, type] = {}


def _stand_in(module: str, name: str) -> type:
    key = f"{module}.{name}"
    if key not in _stand_ins:
        _stand_ins[key] = type(name, (_StandIn,), {"__module__": module, "__qualname__": name})
    return _stand_ins[key]


def _import(module: str, name: str) -> Any:
    if module.startswith("numpy.core") and importlib.util.find_spec("numpy._core") is not None:
        module = "numpy._core" + module[len("numpy.core") :]
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def resolve_global(module: str, name: str, allow: Iterable[str] = ()) -> Any:
    """The object a pickle's ``module.name`` global may stand for, or raise ``_Forbidden``."""
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))  # Python 2 names
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    full = f"{module}.{name}"
    if module == "builtins" and name in _SAFE_BUILTINS:
        return type(None) if name == "NoneType" else getattr(builtins, name)
    if module.split(".")[0] in _INERT_MODULES:
        return _stand_in(module, name)
    if full in _ALLOWED_NAMES or full in allow or _NUMPY_DTYPE_CLASSES.fullmatch(full):
        return _import(module, name)
    if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    if full == "torch.storage._load_from_bytes":  # a tensor inside a plain pickle: torch's own
        return _storage_from_bytes  # would run an unrestricted torch.load on the bytes
    raise _Forbidden(full)


def _storage_from_bytes(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), map_location="cpu", pickle_module=_pickle_module(()), weights_only=False)


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` only returns allow-listed globals."""

    allow: tuple[str, ...] = ()

    def find_class(self, module: str, name: str) -> Any:
        return resolve_global(module, name, self.allow)


def _pickle_module(allow: Iterable[str]) -> ModuleType:
    """A ``pickle``-like module for ``torch.load(pickle_module=...)``."""
    module = ModuleType("dgslm_restricted_pickle")
    unpickler = type("Unpickler", (RestrictedUnpickler,), {"allow": tuple(allow)})
    module.Unpickler = unpickler
    module.load = lambda file, **kw: unpickler(file, **kw).load()
    module.__name__ = "dgslm_restricted_pickle"
    return module


def safe_torch_load(
    path: str | os.PathLike, allow: Iterable[str] = (), plain: bool = True, map_location: Any = "cpu"
) -> Any:
    """``torch.load`` through the restricted unpickler; with ``plain``, see :func:`to_plain`."""
    try:
        obj = torch.load(path, map_location=map_location, pickle_module=_pickle_module(allow), weights_only=False)
    except _Forbidden as err:
        raise DgslmError(f"refusing to load {path}: forbidden global {err}") from None
    except RecursionError:
        raise DgslmError("refusing to load: the pickled structure nests too deep", path) from None
    except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
        raise DgslmError(f"cannot read checkpoint: {err.strerror}", path) from None
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        ValueError,
        KeyError,
        TypeError,
        OSError,
        MemoryError,
        OverflowError,
    ) as err:
        # OSError: torch's zip reader on a truncated file; MemoryError: a corrupt storage size
        reason = " ".join(str(err).split())
        raise DgslmError(f"not a readable PyTorch checkpoint ({type(err).__name__}: {reason})", path) from None
    return _plain_or_refuse(obj, path) if plain else obj


def safe_pickle_load(path: str | os.PathLike, allow: Iterable[str] = (), plain: bool = True) -> Any:
    """Load a plain pickle file through the restricted unpickler."""
    unpickler = type("Unpickler", (RestrictedUnpickler,), {"allow": tuple(allow)})
    try:
        with open(path, "rb") as handle:
            obj = unpickler(handle).load()
    except _Forbidden as err:
        raise DgslmError(f"refusing to load {path}: forbidden global {err}") from None
    except RecursionError:
        raise DgslmError("refusing to load: the pickled structure nests too deep", path) from None
    except OSError as err:
        raise DgslmError(f"cannot read pickle: {err.strerror}", path) from None
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, MemoryError, OverflowError) as err:
        reason = " ".join(str(err).split())
        raise DgslmError(f"not a readable pickle ({type(err).__name__}: {reason})", path) from None
    return _plain_or_refuse(obj, path) if plain else obj


def _plain_or_refuse(obj: Any, path: str | os.PathLike) -> Any:
    try:
        return to_plain(obj)
    except _TooComplex as err:
        raise DgslmError(f"refusing to load: {err}", path) from None


# ---- stand-ins to plain containers --------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\{([\w.]+)\}")
MAX_NODES = 1_000_000  # objects visited in one file's structure (a real fairseq cfg has ~2,000)
MAX_DEPTH = 200  # nesting levels (a real cfg has fewer than 10)


class _TooComplex(Exception):
    """The unpickled structure refers to itself, nests too deep or is too large to walk."""


def to_plain(obj: Any) -> Any:
    """Replace stand-ins and ``argparse.Namespace`` by plain values, recursively:
    ``DictConfig`` -> dict, ``ListConfig`` -> list, value nodes -> their value, enum ->
    its value, type references -> ``"module.name"``. Whole-string ``${a.b}`` interpolations
    are resolved against the outermost DictConfig.

    Shared sub-objects are converted once (the result shares them too); a structure that
    contains itself, nests deeper than ``MAX_DEPTH`` or needs more than ``MAX_NODES`` visits
    raises ``_TooComplex``."""
    return _Walk()(obj)


class _Walk:
    """One bounded, memoised walk of an unpickled structure."""

    def __init__(self) -> None:
        self.memo: dict[int, Any] = {}
        self.active: set[int] = set()
        self.visits = 0

    def enter(self, obj: Any, depth: int) -> int:
        key = id(obj)
        self.visits += 1
        if key in self.active:
            raise _TooComplex("the pickled structure contains itself")
        if depth > MAX_DEPTH:
            raise _TooComplex(f"the pickled structure nests deeper than {MAX_DEPTH} levels")
        if self.visits > MAX_NODES:
            raise _TooComplex(f"the pickled structure needs more than {MAX_NODES:,} steps to read")
        self.active.add(key)
        return key

    def __call__(self, obj: Any, in_config: bool = False, depth: int = 0) -> Any:
        key = id(obj)
        if key in self.memo:
            return self.memo[key]
        if not isinstance(obj, (argparse.Namespace, _StandIn, dict, list, tuple)):
            return _plain_leaf(obj)
        self.enter(obj, depth)
        out = self.convert(obj, in_config, depth + 1)
        self.active.discard(key)
        self.memo[key] = out
        return out

    def convert(self, obj: Any, in_config: bool, depth: int) -> Any:
        if isinstance(obj, argparse.Namespace):
            return {k: self(v, in_config, depth) for k, v in vars(obj).items()}
        if isinstance(obj, _StandIn):
            module, kind = type(obj).__module__, type(obj).__name__
            if module.startswith("omegaconf") and kind in ("DictConfig", "ListConfig"):
                out = self(_content(obj), True, depth)
                return _Resolve(out, self)(out) if kind == "DictConfig" and not in_config else out
            if module.startswith("omegaconf") and kind.endswith("Node"):
                state = obj.state if isinstance(obj.state, dict) else {}
                return self(state.get("_val"), in_config, depth)
            if len(obj.args) == 1:  # enum member: Enum(value)
                return self(obj.args[0], in_config, depth)
            return f"{module}.{kind}"
        if isinstance(obj, dict):
            items = [(k, self(v, in_config, depth)) for k, v in obj.items()]
            return type(obj)(items) if type(obj) in (dict, collections.OrderedDict) else dict(items)
        if type(obj) in (list, tuple):
            values = [self(v, in_config, depth) for v in obj]
            return tuple(values) if type(obj) is tuple else values
        return obj


def _plain_leaf(obj: Any) -> Any:
    """Type references to stand-ins become ``"module.name"``; other leaves stay."""
    return f"{obj.__module__}.{obj.__name__}" if isinstance(obj, type) and issubclass(obj, _StandIn) else obj


def _content(container: _StandIn) -> Any:
    state = container.state
    if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
        state = state[0] or state[1]
    return state.get("_content") if isinstance(state, dict) else None


class _Resolve:
    """Resolve whole-string ``${a.b}`` references against ``root`` (a plain config dict),
    converting each shared sub-dict once, within the walk's budget."""

    def __init__(self, root: Any, walk: _Walk):
        self.root, self.walk, self.memo = root, walk, {}

    def __call__(self, node: Any, depth: int = 0, hops: int = 0) -> Any:
        if isinstance(node, str):
            return self.reference(node, depth, hops)
        if not isinstance(node, (dict, list)):
            return node
        key = id(node)
        if key in self.memo:
            return self.memo[key]
        self.walk.enter(node, depth)
        if isinstance(node, dict):
            out: Any = {k: self(v, depth + 1, hops) for k, v in node.items()}
        else:
            out = [self(v, depth + 1, hops) for v in node]
        self.walk.active.discard(key)
        self.memo[key] = out
        return out

    def reference(self, node: str, depth: int, hops: int) -> Any:
        match = _INTERPOLATION.fullmatch(node)
        if not match or hops > 16:
            return node
        target: Any = self.root
        for part in match.group(1).split("."):
            if not isinstance(target, dict) or part not in target:
                return node
            target = target[part]
        if isinstance(target, (dict, list)) and id(target) in self.walk.active:
            return node  # a reference to an enclosing section stays as it is
        return self(target, depth + 1, hops + 1)
