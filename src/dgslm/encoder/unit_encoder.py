"""Speech to discrete units: features (HuBERT layer L, log-mel or MFCC) + k-means, per channel.

``UnitEncoder.from_pretrained(hubert_path, km_path, layer=12).wav2codes(path)`` returns what
the original dGSLM ``HubertTokenizer.wav2codes`` returns: a list of two strings (channel 1,
channel 2) of space-separated unit ids, one per 20 ms frame, no deduplication. Unlike the
original, audio at any sample rate is resampled to 16 kHz (soxr).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch
from torch import Tensor

from dgslm.audio import SAMPLE_RATE, load_audio, resample
from dgslm.device import pick_device
from dgslm.encoder.features import FLOOR_DB, FeatureReader, build_feature_reader
from dgslm.encoder.hubert_checkpoint import hubert_folder_config
from dgslm.encoder.kmeans import KMeansQuantizer
from dgslm.errors import DgslmError
from dgslm.model_folder import CONFIG, DEFAULT_LAYER, features_folder_type, read_config
from dgslm.units.smoothing import SilenceSmoothing, smooth_silence


def units_to_string(units: Tensor) -> str:
    """[T] unit ids -> ``"u u u"``."""
    return " ".join(map(str, units.tolist()))


class UnitEncoder:
    """A feature reader + a k-means quantizer: audio to one unit string per channel."""

    def __init__(self, reader: FeatureReader, quantizer: KMeansQuantizer, device: str | torch.device | None = None,
                 min_silence: int = 0, min_speech: int = 0):  # fmt: skip
        """``min_silence``/``min_speech`` > 0: :func:`smooth_silence` around the unit of digital silence."""
        if reader.dim != quantizer.dim:
            raise DgslmError(f"the k-means centres have {quantizer.dim} dims but the features have {reader.dim}")
        self.reader = reader
        self.device = pick_device(device)
        self.quantizer = quantizer.to(self.device)
        self.smoothing = None
        if min_silence > 0 or min_speech > 0:
            self.smoothing = SilenceSmoothing(self.silence_unit(), min_silence, min_speech)

    def fingerprint(self) -> str:
        """A digest of everything that decides the units: the feature reader's settings and
        weights, the k-means centres and the silence smoothing (resumed work must match it)."""
        digest = hashlib.blake2b(digest_size=16)

        def feed(value: object) -> None:
            if isinstance(value, torch.nn.Module):
                value = value.state_dict()
            if isinstance(value, Tensor):
                digest.update(value.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes())
            elif isinstance(value, dict):
                for key in sorted(value, key=str):
                    digest.update(str(key).encode())
                    feed(value[key])
            elif hasattr(value, "__dict__") and not isinstance(value, type):
                digest.update(type(value).__name__.encode())
                feed(vars(value))
            else:
                digest.update(repr(value).encode())

        for part in (self.reader, self.quantizer, self.smoothing):
            feed(part)
        return digest.hexdigest()

    def silence_unit(self) -> int:
        """The unit of one second of digital silence (its most frequent frame unit)."""
        silence = torch.zeros(1, SAMPLE_RATE, device=self.device)
        return int(torch.mode(self.quantizer(self.reader(silence)).flatten()).values)

    @classmethod
    def from_pretrained(
        cls,
        hubert_path: str | os.PathLike | None,
        km_path: str | os.PathLike,
        layer: int | None = None,
        device: str | torch.device | None = None,
        feature_type: str = "hubert",
        autocast_dtype: torch.dtype | None = None,
        streaming: tuple[int, int] | None = None,
        min_silence: int | None = None,
        min_speech: int | None = None,
    ) -> UnitEncoder:
        """HuBERT checkpoint (original fairseq ``.pt`` or our converted folder) + k-means file
        (ours or the original pickle), or a feature-only unit folder (log-mel/MFCC, see
        :func:`dgslm.model_folder.features_folder_type`). ``layer`` defaults to a converted folder's k-means layer,
        else 12. ``autocast_dtype`` (bf16/fp16) speeds HuBERT up on GPUs; fp32 (None) is exact.
        ``streaming=(new_frames, context_frames)`` bounds memory (see ``Hubert.extract_streaming``).
        ``min_silence``/``min_speech``: silence smoothing (see :func:`smooth_silence`); None takes
        a feature-only unit folder's ``min_silence_frames``/``min_speech_frames``, else 0 (off).
        A feature-only folder's ``floor_db`` sets the log-mel floor its k-means was trained with."""
        device = pick_device(device)
        folder_cfg, floor_db = {}, FLOOR_DB
        if feature_type == "hubert" and hubert_path is not None and (kind := features_folder_type(hubert_path)):
            config_path = os.path.join(hubert_path, CONFIG)
            folder_cfg = read_config(config_path)
            floor_db = folder_cfg.get("floor_db", FLOOR_DB)
            if not isinstance(floor_db, (int, float)) or isinstance(floor_db, bool):
                raise DgslmError(f"floor_db must be a number of dB, not {floor_db!r}", config_path)
            feature_type, hubert_path = kind, None  # a log-mel/MFCC unit folder: no HuBERT
        if min_silence is None:
            min_silence = int(folder_cfg.get("min_silence_frames", 0))
        if min_speech is None:
            min_speech = int(folder_cfg.get("min_speech_frames", 0))
        if layer is None:
            folder = feature_type == "hubert" and hubert_path is not None and os.path.isdir(hubert_path)
            layer = hubert_folder_config(hubert_path)[1] if folder else DEFAULT_LAYER
        reader = build_feature_reader(
            feature_type, hubert_path, layer, device, autocast_dtype, streaming, float(floor_db)
        )
        return cls(reader, KMeansQuantizer.from_file(km_path), device, min_silence, min_speech)

    def units(self, wave: Tensor, batch_size: int = 2) -> Tensor:
        """[C, N] waveforms at 16 kHz (equal lengths) -> [C, T] int64 units, ``batch_size``
        channels per forward pass (each channel's result is independent of the batch)."""
        if wave.shape[-1] < self.reader.min_samples:
            raise DgslmError(f"audio too short: {wave.shape[-1]} samples, one frame needs {self.reader.min_samples}")
        wave = wave.to(self.device, torch.float32)
        units = torch.cat([self.quantizer(self.reader(part)) for part in wave.split(batch_size)]).cpu()
        if self.smoothing is not None:
            units = torch.stack([smooth_silence(channel, self.smoothing) for channel in units])
        return units

    def encode(self, waveform: np.ndarray | Tensor, sample_rate: int = SAMPLE_RATE) -> list[str]:
        """``[frames, channels]`` (or ``[frames]``) audio -> one unit string per channel."""
        wave = np.asarray(waveform.cpu() if isinstance(waveform, Tensor) else waveform, dtype=np.float32)
        wave = resample(wave.reshape(len(wave), -1), sample_rate, SAMPLE_RATE)
        return [units_to_string(u) for u in self.units(torch.from_numpy(np.ascontiguousarray(wave.T)))]

    def wav2code(self, path: str | os.PathLike, channel_id: int = 1) -> str:
        """Units of channel ``channel_id`` (1-based) of a multi-channel file."""
        wave = self._read_multichannel(path)
        if not 1 <= channel_id <= wave.shape[1]:
            raise DgslmError(f"no channel {channel_id} (the file has {wave.shape[1]})", path)
        return self.encode(wave[:, channel_id - 1])[0]

    def wav2codes(self, path: str | os.PathLike) -> list[str]:
        """``[units of channel 1, units of channel 2]`` of a stereo file."""
        wave = self._read_multichannel(path)
        if wave.shape[1] != 2:
            raise DgslmError(f"expected a stereo file, got {wave.shape[1]} channels", path)
        return self.encode(wave)

    @staticmethod
    def _read_multichannel(path: str | os.PathLike) -> np.ndarray:
        wave, _ = load_audio(path)
        if wave.shape[1] < 2:
            raise DgslmError("mono file: dGSLM encodes each channel of a two-channel dialogue", path)
        return wave
