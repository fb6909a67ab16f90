"""High-level vocoder API, like the original ``HifiganVocoder`` (dgslm_utils.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from dgslm.errors import DgslmError
from dgslm.vocoder.checkpoint import load_generator
from dgslm.vocoder.generator import UnitGenerator
from dgslm.vocoder.output_stage import OutputStage

Units = str | Sequence[int] | torch.Tensor


class UnitVocoder:
    """A unit HiFi-GAN ready for inference (weight norm folded, eval mode).

    ``code2wav(units, speaker_id)`` -> [N]; ``codes2wav(codes, speaker_ids)`` -> [2, N]
    (channels first, as the original); ``stereo(...)`` -> [N, 2] or, with ``mix``, [N].
    """

    def __init__(
        self,
        generator: UnitGenerator,
        device: str | torch.device = "cpu",
        autocast_dtype: torch.dtype | None = None,
        source: str | None = None,
    ):
        self.generator = generator.eval().to(device)
        self.cfg = generator.cfg
        self.autocast_dtype = autocast_dtype  # e.g. torch.bfloat16; None computes in float32
        self.source = source
        self.sample_rate = 16_000  # fairseq stores no rate; every dGSLM script uses 16 kHz
        try:
            self.output_stage = OutputStage.from_config(self.cfg.extra, self.sample_rate)
        except ValueError as err:
            raise DgslmError(f"bad vocoder config: {err}", source) from None

    @classmethod
    def from_pretrained(
        cls,
        vocoder_path: str | os.PathLike,
        config_path: str | os.PathLike | None = None,
        device: str | torch.device = "cpu",
        autocast_dtype: torch.dtype | None = None,
    ) -> UnitVocoder:
        """An original checkpoint + its ``config.json``, or a converted folder (whose own
        ``config.json`` is the default)."""
        return cls(load_generator(vocoder_path, config_path), device, autocast_dtype, source=str(vocoder_path))

    @property
    def device(self) -> torch.device:
        return self.generator.conv_pre.weight.device

    @property
    def multispeaker(self) -> bool:
        return self.generator.spkr is not None

    def to(self, device: str | torch.device) -> UnitVocoder:
        self.generator.to(device)
        return self

    def units_tensor(
        self, units: Units, path: str | os.PathLike | None = None, line: int | None = None
    ) -> torch.Tensor:
        """Unit string or ids -> LongTensor [U]; negative ids are dropped (as the original).
        Empty input or ids beyond the table raise DgslmError naming ``path:line``."""
        if isinstance(units, str):
            try:
                ids = [int(u) for u in units.split()]
            except ValueError:
                raise DgslmError(f"units must be integers, got {units[:40]!r}", path, line) from None
            units = torch.tensor(ids, dtype=torch.long)
        code = torch.as_tensor(units, dtype=torch.long).reshape(-1)
        code = code[code >= 0]
        if code.numel() == 0:
            raise DgslmError("no units to vocode (empty unit sequence)", path, line)
        n = self.cfg.num_embeddings
        if int(code.max()) >= n:
            raise DgslmError(f"unit {int(code.max())} is beyond the vocoder's table of {n} units", path, line)
        return code

    def speaker_tensor(
        self, speaker_ids: Sequence[int], path: str | os.PathLike | None = None, line: int | None = None
    ) -> torch.Tensor | None:
        """Speaker ids -> LongTensor [C] (None for a single-speaker vocoder); ids beyond the table
        raise DgslmError naming ``path:line``."""
        if not self.multispeaker:
            return None
        if self.cfg.embedder_params:
            raise DgslmError("this vocoder takes speaker vectors, not speaker ids", path, line)
        for sid in speaker_ids:
            if not 0 <= sid < self.cfg.num_speakers:
                raise DgslmError(
                    f"speaker id {sid} is beyond the vocoder's {self.cfg.num_speakers} speakers", path, line
                )
        return torch.tensor(list(speaker_ids), dtype=torch.long, device=self.device)

    @torch.inference_mode()
    def synthesize(
        self,
        channels: Sequence[Units],
        speaker_ids: Sequence[int],
        dur_prediction: bool = False,
        path: str | os.PathLike | None = None,
        line: int | None = None,
    ) -> torch.Tensor:
        """Vocode several unit sequences -> float32 [C, N] on the CPU.

        Equal-length channels run as one batch. With duration prediction the channels are
        vocoded one by one and the shorter ones are padded with silence at the end (the
        original's ``codes2wav`` crashes there instead). The config's output stage
        (:mod:`dgslm.vocoder.output_stage`) applies last: its gain, and its silence gate unless
        with duration prediction, whose frames are not the units'."""
        if len(speaker_ids) != len(channels):
            raise DgslmError(f"{len(channels)} channels but {len(speaker_ids)} speaker ids", path, line)
        codes = [self.units_tensor(u, path, line) for u in channels]
        speakers = self.speaker_tensor(speaker_ids, path, line)
        lengths = {c.numel() for c in codes}
        autocast = torch.autocast(self.device.type, self.autocast_dtype, enabled=self.autocast_dtype is not None)
        if not dur_prediction and len(lengths) == 1:
            with autocast:
                wave = self.generator(torch.stack(codes).to(self.device), speakers)
            return self.output_stage.apply(wave.float().cpu(), codes, self.cfg.hop_size)
        waves = []
        for i, code in enumerate(codes):
            spk = None if speakers is None else speakers[i : i + 1]
            with autocast:
                wave = self.generator(code[None].to(self.device), spk, dur_prediction)
            waves.append(wave[0].float().cpu())
        n = max(w.numel() for w in waves)
        waves = torch.stack([F.pad(w, (0, n - w.numel())) for w in waves])
        return self.output_stage.apply(waves, None if dur_prediction else codes, self.cfg.hop_size)

    def code2wav(self, code: Units, speaker_id: int = 0, pred_dur: bool = False) -> torch.Tensor:
        """One unit sequence -> waveform [N] (float32, 16 kHz)."""
        return self.synthesize([code], [speaker_id], pred_dur)[0]

    def codes2wav(
        self, codes: Sequence[Units] | Mapping[str, Units], speaker_ids: Sequence[int] = (0, 4), pred_dur: bool = False
    ) -> torch.Tensor:
        """Two unit sequences (list, or dict values in order) -> [2, N], like the original."""
        if isinstance(codes, Mapping):
            codes = list(codes.values())
        return self.synthesize(list(codes), list(speaker_ids), pred_dur)

    def stereo(
        self,
        codes: Sequence[Units] | Mapping[str, Units],
        speaker_ids: Sequence[int] = (0, 4),
        dur_prediction: bool = False,
        mix: bool = False,
        path: str | os.PathLike | None = None,
        line: int | None = None,
    ) -> torch.Tensor:
        """What ``dgslm vocode`` writes: [N, 2] (frames x channels), or the mono mean [N] with ``mix``."""
        if isinstance(codes, Mapping):
            codes = list(codes.values())
        wave = self.synthesize(list(codes), list(speaker_ids), dur_prediction, path, line).T
        return wave.mean(dim=1) if mix else wave
