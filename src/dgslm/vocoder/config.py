"""The unit HiFi-GAN configuration: the speech-resynthesis / fairseq ``config.json``, read as it is."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from dgslm.errors import DgslmError
from dgslm.fileio import atomic_write
from dgslm.model_check import check_numbers
from dgslm.model_folder import read_config


@dataclass
class DurationPredictorConfig:
    """``dur_predictor_params``: a small conv predictor of log(duration + 1) per unit."""

    encoder_embed_dim: int = 128
    var_pred_hidden_dim: int = 128
    var_pred_kernel_size: int = 3
    var_pred_dropout: float = 0.5


@dataclass
class VocoderConfig:
    """Fields of ``config.json`` that define the generator (others are kept in ``extra``).

    ``multispkr`` truthy adds a speaker table of ``num_speakers`` rows (or, with
    ``embedder_params``, a Linear from ``embedder_dim`` speaker vectors); ``model_in_dim`` is the
    width of the concatenated conditioning (units, then speaker).
    """

    num_embeddings: int = 500
    embedding_dim: int = 128
    model_in_dim: int = 80
    upsample_initial_channel: int = 512
    upsample_rates: list[int] = field(default_factory=lambda: [5, 4, 4, 2, 2])
    upsample_kernel_sizes: list[int] = field(default_factory=lambda: [11, 8, 8, 4, 4])
    resblock_kernel_sizes: list[int] = field(default_factory=lambda: [3, 7, 11])
    resblock_dilation_sizes: list[list[int]] = field(default_factory=lambda: [[1, 3, 5]] * 3)
    multispkr: str | None = None
    num_speakers: int = 200
    embedder_params: Any = None
    embedder_dim: int = 256
    dur_predictor_params: DurationPredictorConfig | None = None
    f0: bool | None = None
    sampling_rate: int = 16_000
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def hop_size(self) -> int:
        """Output samples per unit (the product of the upsampling rates)."""
        return math.prod(self.upsample_rates)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], path: str | os.PathLike | None = None) -> VocoderConfig:
        if raw.get("f0"):
            raise DgslmError("F0-conditioned vocoders are not supported (config has f0 true)", path)
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in raw.items() if k in names}
        extra = {k: v for k, v in raw.items() if k not in names}
        dur = known.get("dur_predictor_params")
        if dur is not None:
            try:
                known["dur_predictor_params"] = DurationPredictorConfig(**dur)
            except TypeError as err:
                raise DgslmError(f"bad dur_predictor_params: {err}", path) from None
        try:
            cfg = cls(**known, extra=extra)
            cfg.check()
        except (TypeError, ValueError) as err:
            raise DgslmError(f"bad vocoder config: {err}", path) from None
        if not (len(cfg.upsample_rates) == len(cfg.upsample_kernel_sizes) > 0):
            raise DgslmError("upsample_rates and upsample_kernel_sizes must be non-empty and of equal length", path)
        if len(cfg.resblock_kernel_sizes) != len(cfg.resblock_dilation_sizes):
            raise DgslmError("resblock_kernel_sizes and resblock_dilation_sizes differ in length", path)
        if cfg.upsample_initial_channel % 2 ** len(cfg.upsample_rates):
            raise DgslmError("upsample_initial_channel must be divisible by 2^(number of upsampling stages)", path)
        return cfg

    def check(self) -> None:
        """ValueError unless every size is a positive integer (lists: non-empty lists of them)."""
        for name in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes", "resblock_dilation_sizes"):
            if not isinstance(getattr(self, name), list) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty list")
        sizes = ("num_embeddings", "embedding_dim", "model_in_dim", "upsample_initial_channel", "upsample_rates",
                 "upsample_kernel_sizes", "resblock_kernel_sizes", "resblock_dilation_sizes", "num_speakers",
                 "embedder_dim", "sampling_rate")  # fmt: skip
        check_numbers(vars(self), {name: (int, 1) for name in sizes})
        if self.dur_predictor_params is not None:
            dur = vars(self.dur_predictor_params)
            check_numbers(
                dur, {k: (int, 1) for k in ("encoder_embed_dim", "var_pred_hidden_dim", "var_pred_kernel_size")}
            )
            check_numbers(dur, {"var_pred_dropout": (float, 0)})

    @classmethod
    def load(cls, path: str | os.PathLike) -> VocoderConfig:
        """Read a ``config.json`` (DgslmError naming the file if it is not a JSON object)."""
        return cls.from_dict(read_config(path), path)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.name != "extra":
                value = getattr(self, f.name)
                out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write ``config.json`` atomically, loadable by the original tools."""
        with atomic_write(path) as handle:
            json.dump(self.to_dict(), handle, indent=4)
            handle.write("\n")
