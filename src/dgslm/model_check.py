"""Model configurations checked against their weight files before anything is allocated
(imports torch only when a model is built).

A ``config.json`` (or a checkpoint's cfg) can ask for any size: ``embed_dim`` 1048576 means
terabytes. :func:`check_numbers` refuses values of the wrong type or out of range, and
:func:`build_checked` builds the model on torch's ``meta`` device (no memory), compares every
parameter's shape with the weight file's tensors and only then builds it for real: a model is
never larger than the weights it loads.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from dgslm.errors import DgslmError

if TYPE_CHECKING:
    from torch import Tensor

M = TypeVar("M")
MAX_BUFFER_ELEMENTS = 2**27  # non-weight tables built from the config (e.g. sinusoids): 512 MB


def check_numbers(values: Mapping[str, Any], rules: Mapping[str, tuple[type, float]]) -> None:
    """``rules[name] = (int or float, minimum)``: each value must be of that kind (no bool, no
    string; float accepts ints), finite and >= minimum; list values are checked item by item.
    Raises ValueError naming the field."""
    for name, (kind, minimum) in rules.items():
        value = values.get(name)
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, (list, tuple)):  # nested lists (resblock dilations)
                check_numbers({name: item}, {name: (kind, minimum)})
                continue
            ok_type = int if kind is int else (int, float)
            if isinstance(item, bool) or not isinstance(item, ok_type):
                raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'}, not {item!r}")
            if not math.isfinite(item) or item < minimum:
                raise ValueError(f"{name} must be >= {minimum:g}, not {item!r}")


def count_indexed(state: Iterable[str], prefix: str) -> int:
    """How many ``prefix.<i>.`` entries (``i`` = 0, 1, ...) the weight names hold."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    return len({int(m.group(1)) for name in state if (m := pattern.match(name))})


def require_count(kind: str, configured: int, state: Iterable[str], prefix: str, config_path: Any) -> None:
    """DgslmError unless the config's number of ``kind`` equals the weight file's (checked before
    building anything, so that a huge count costs nothing)."""
    stored = count_indexed(state, prefix)
    if configured != stored:
        raise DgslmError(f"the config gives {configured} {kind} but the weights hold {stored}", config_path)


def check_state(
    expected: Mapping[str, Tensor],
    state: Mapping[str, Tensor],
    config_path: str | os.PathLike | None,
    weights_path: Any = None,
    optional: Iterable[str] = (),
) -> None:
    """One-line DgslmError naming the config when the model's parameter names or shapes
    (``expected``) disagree with the weight file's (``state``); ``optional`` names may be absent."""
    where = f" (checkpoint {weights_path})" if weights_path is not None else ""
    missing = sorted(set(expected) - set(state) - set(optional))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}")
        raise DgslmError(f"config does not match the checkpoint{where}: {'; '.join(parts)}", config_path)
    for key, value in expected.items():
        if key in state and tuple(state[key].shape) != tuple(value.shape):
            raise DgslmError(
                f"config does not match the checkpoint{where}: {key} has shape {list(state[key].shape)} "
                f"in the checkpoint but the config gives {list(value.shape)}",
                config_path,
            )


def build_checked(
    factory: Callable[[], M],
    state: Mapping[str, Tensor],
    config_path: str | os.PathLike | None,
    weights_path: Any = None,
    optional: Iterable[str] = (),
) -> M:
    """``factory()`` built first on the ``meta`` device and checked against ``state`` (see
    :func:`check_state`), including its non-weight buffers' sizes; then built for real."""
    import torch

    with torch.device("meta"):
        shape_only = factory()
    check_state(shape_only.state_dict(), state, config_path, weights_path, optional)
    for name, buffer in shape_only.named_buffers():
        if buffer.numel() > MAX_BUFFER_ELEMENTS:
            raise DgslmError(
                f"the config asks for a {list(buffer.shape)} table ({name}), over the limit of "
                f"{MAX_BUFFER_ELEMENTS:,} values",
                config_path,
            )
    return factory()
