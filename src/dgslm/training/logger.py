"""Training logs: console lines, a tqdm progress bar and TensorBoard scalars/audio/images.

Only the main rank writes; other ranks get a logger whose methods do nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

import numpy as np
from tqdm import tqdm

log = logging.getLogger("dgslm.train")


def format_scalar(value: float) -> str:
    """3 decimals (``%g``), the original's console style; 3 significant digits under 0.01 (a learning rate)."""
    value = float(value)
    return f"{value:.3g}" if 0 < abs(value) < 0.01 else f"{round(value, 3):g}"


def format_scalars(values: dict[str, float]) -> str:
    """``k v | k v``, each value as :func:`format_scalar`."""
    return " | ".join(f"{k} {format_scalar(v)}" for k, v in values.items())


class TrainingLogger:
    """Console + TensorBoard logging of one run (``log_dir`` None: console only)."""

    def __init__(self, log_dir: str | os.PathLike | None = None, enabled: bool = True):
        self.enabled = enabled
        self.writer = None
        if enabled and log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(log_dir))

    def progress(self, iterable: Iterable, total: int | None = None, desc: str = "", initial: int = 0) -> Iterable:
        """A tqdm bar on the main rank (to stderr), the bare iterable elsewhere."""
        if not self.enabled:
            return iterable
        return tqdm(iterable, total=total, desc=desc, initial=initial, leave=False, dynamic_ncols=True)

    def scalars(self, tag: str, step: int, values: dict[str, float], console: bool = True) -> None:
        """Log ``values`` under ``tag/`` at ``step``; also one console line if ``console``."""
        if not self.enabled:
            return
        if console:
            log.info("%s | %s", tag, format_scalars({"num_updates": step, **values}))
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{tag}/{key}", float(value), step)

    def audio(self, tag: str, step: int, waveform: np.ndarray, sample_rate: int) -> None:
        if self.enabled and self.writer is not None:
            self.writer.add_audio(tag, np.asarray(waveform, dtype=np.float32), step, sample_rate=sample_rate)

    def image(self, tag: str, step: int, image: np.ndarray) -> None:
        """``image``: (H, W) or (H, W, 3) array with values in [0, 1]."""
        if self.enabled and self.writer is not None:
            image = np.asarray(image, dtype=np.float32)
            self.writer.add_image(tag, image, step, dataformats="HW" if image.ndim == 2 else "HWC")

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
