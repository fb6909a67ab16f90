"""``SpeechDLM``: the Python API, mirroring the original's ``SpeechDLM.from_pretrained`` hub.

>>> lm = SpeechDLM.from_pretrained("checkpoint", checkpoint_file="speech_dlm_base.pt",
...                                data_name_or_path="checkpoint").eval()
>>> out = lm.forward_units({"unitA": "7 376 376", "unitB": "7 499 415"})
>>> out.logits.shape  # (1, C, K, T + 1, V): the input starts with eos
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dgslm.errors import DgslmError
from dgslm.lm import generate
from dgslm.lm.checkpoint import (
    build_model,
    is_pretrained_folder,
    load_fairseq_checkpoint,
    load_model_dictionaries,
    load_pretrained,
)
from dgslm.lm.config import SpeechDLMConfig
from dgslm.lm.dataset import discover_channels
from dgslm.lm.model import SpeechDLMModel, SpeechDLMOutput
from dgslm.units.dictionary import Dictionary


class SpeechDLM:
    """A SpeechDLM model with its per-channel dictionaries."""

    def __init__(self, model: SpeechDLMModel, dicts: Mapping[str, Dictionary]):
        self.model = model
        self.cfg: SpeechDLMConfig = model.cfg
        self.channels: tuple[str, ...] = model.cfg.channels
        self.dicts: dict[str, Dictionary] = {channel: dicts[channel] for channel in self.channels}
        self.dictionary: Dictionary = self.dicts[self.channels[0]]

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str | os.PathLike,
        checkpoint_file: str = "checkpoint_best.pt",
        data_name_or_path: str | os.PathLike = ".",
    ) -> SpeechDLM:
        """Load ``model_name_or_path/checkpoint_file`` (an original ``.pt``) with the
        ``dict.<channel>.txt`` files of ``data_name_or_path`` (relative to the model folder when
        it starts with "."), or one of our folders (``model.safetensors`` + ``config.json``)."""
        root = Path(model_name_or_path)
        if root.is_dir() and is_pretrained_folder(root):
            return cls(*load_pretrained(root))
        path = root / checkpoint_file if root.is_dir() else root
        data = Path(data_name_or_path)
        if str(data_name_or_path).startswith("."):
            data = (root if root.is_dir() else root.parent) / data
        cfg, state, raw_cfg = load_fairseq_checkpoint(path)
        task = raw_cfg.get("task") if isinstance(raw_cfg.get("task"), Mapping) else raw_cfg
        if not task.get("channels"):  # like the original: every dict.<channel>.txt of the data folder
            try:
                cfg = dataclasses.replace(cfg, channels=discover_channels(data))
            except ValueError as err:  # fewer than 2 channels
                raise DgslmError(str(err), data) from None
        return cls(build_model(cfg, state, path), load_model_dictionaries(data, cfg))

    # ---- device and mode -------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.model.embed_tokens.weight.device

    def eval(self) -> SpeechDLM:
        self.model.eval()
        return self

    def train(self, mode: bool = True) -> SpeechDLM:
        self.model.train(mode)
        return self

    def to(self, *args: Any, **kwargs: Any) -> SpeechDLM:
        self.model.to(*args, **kwargs)
        return self

    def cuda(self, device: int | None = None) -> SpeechDLM:
        self.model.cuda(device)
        return self

    def cpu(self) -> SpeechDLM:
        self.model.cpu()
        return self

    # ---- units -----------------------------------------------------------------------------

    def encode(self, units: Mapping[str, str]) -> Tensor:
        """``{channel: "u u u"}`` -> (C, T + 1) ids: eos first, then the units (unknown units
        -> unk), as the original feeds its decoder."""
        ids = generate.encode_prompt(units, self.channels, self.dicts)
        eos = torch.full((len(self.channels), 1), self.dictionary.eos(), dtype=torch.long)
        return torch.cat([eos, ids], dim=1)

    @torch.no_grad()
    def forward_units(self, units: Mapping[str, str]) -> SpeechDLMOutput:
        """Every head's logits and durations for one ``{channel: units}`` input (batch of 1)."""
        return self.model(self.encode(units).unsqueeze(0).to(self.device))

    def sample(self, *args: Any, **kwargs: Any):
        """Continue unit prompts; see :func:`dgslm.lm.generate.sample`."""
        return generate.sample(self, *args, **kwargs)
