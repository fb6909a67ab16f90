"""From a stereo prompt to a continued stereo dialogue: encode, continue, vocode.

>>> pipe = DialoguePipeline.from_pretrained()                  # the cache (see dgslm.models.resolve)
>>> wave, sr = load_audio("conversation.wav", None)              # [frames, 2]
>>> outputs = pipe.continue_dialogue(wave, sr, seconds=10, prompt_seconds=5, num_samples=2)
>>> outputs[0].shape                                             # (frames, 2) at pipe.sample_rate

Units run at 50 Hz (one per 20 ms). A prompt of N samples (16 kHz) gives P = (N - 400) // 320 + 1
frames; ``seconds`` of continuation is F = round(seconds * 50) frames. By default
(:mod:`dgslm.pipeline.defaults`) the model attends to at most its training block length, so P + F
is unbounded; with ``context_window=0`` (the original) it holds at most ``max_positions - 1``
frames in all. The vocoder turns each frame into ``hop`` samples
(320), so an output has (P + F) * hop samples, or F * hop with ``continuation_only``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from dgslm.audio import FRAME_RATE, SAMPLE_RATE, resample
from dgslm.device import pick_device
from dgslm.encoder.unit_encoder import UnitEncoder, units_to_string
from dgslm.errors import DgslmError
from dgslm.lm.generate import GenerationConfig, with_options
from dgslm.lm.hub import SpeechDLM
from dgslm.models.resolve import DEMO_DIR, ModelPaths, resolve_model_paths
from dgslm.pipeline.defaults import DIALOGUE_DEFAULTS
from dgslm.vocoder.unit_vocoder import UnitVocoder

logger = logging.getLogger(__name__)


def dialogue_options(config: GenerationConfig | None, options: Mapping[str, Any]) -> GenerationConfig:
    """``config`` (default: :data:`~dgslm.pipeline.defaults.DIALOGUE_DEFAULTS`) with the fields
    named in ``options`` replaced."""
    return with_options(GenerationConfig(**DIALOGUE_DEFAULTS) if config is None else config, options)


@dataclass
class Continuation:
    """One generated dialogue: the units of both channels (prompt + continuation) and its audio."""

    units: dict[str, str]
    prompt_frames: int
    audio: np.ndarray  # [samples, 2] float32 at the vocoder's rate


def stereo_prompt(
    waveform: np.ndarray,
    sample_rate: int,
    prompt_seconds: float | None = None,
    allow_mono: bool = False,
    path: str | os.PathLike | None = None,
) -> np.ndarray:
    """``[frames, channels]`` (or ``[frames]``) audio -> its first ``prompt_seconds`` as
    ``[samples, 2]`` float32 at 16 kHz. Mono is refused unless ``allow_mono`` (then duplicated)."""
    wave = np.asarray(waveform, dtype=np.float32)
    wave = wave.reshape(len(wave), -1)
    if wave.shape[1] == 1:
        if not allow_mono:
            raise DgslmError("mono prompt: dGSLM continues a two-channel dialogue, one speaker per "
                             "channel (use --allow-mono to put the same audio on both)", path)  # fmt: skip
        wave = np.repeat(wave, 2, axis=1)
    if wave.shape[1] != 2:
        raise DgslmError(f"the prompt has {wave.shape[1]} channels; dGSLM needs 2 (one speaker each)", path)
    if prompt_seconds is not None:
        if prompt_seconds <= 0:
            raise DgslmError(f"--prompt-seconds must be > 0, got {prompt_seconds:g}")
        wave = wave[: round(prompt_seconds * sample_rate)]
    return resample(wave, sample_rate, SAMPLE_RATE)


class DialoguePipeline:
    """UnitEncoder (stereo audio -> units), SpeechDLM (continue both channels), UnitVocoder."""

    def __init__(
        self, encoder: UnitEncoder | None, lm: SpeechDLM, vocoder: UnitVocoder, speakers: Sequence[int] = (0, 4)
    ):
        self.encoder = encoder
        self.lm = lm.eval()
        self.vocoder = vocoder
        self.speakers = tuple(speakers)
        if len(self.lm.channels) != 2 or len(self.speakers) != 2:
            raise DgslmError(f"the pipeline needs a 2-channel SpeechDLM and 2 speakers, got {self.lm.channels}")

    @classmethod
    def from_pretrained(
        cls,
        paths: ModelPaths | None = None,
        device: str | torch.device | None = None,
        speakers: Sequence[int] = (0, 4),
        dtype: str | torch.dtype | None = None,
        **flags,
    ) -> DialoguePipeline:
        """Load the models from ``paths``, or from :func:`resolve_model_paths` (``flags``: hubert,
        km, layer, speech_dlm, speech_dlm_data, vocoder, vocoder_cfg, cache, demo, models, no_demo).
        Without HuBERT paths (``models=("speech_dlm", "hifigan")``) there is no encoder: the
        pipeline then starts from units only. ``dtype``: the SpeechDLM's decoding weights
        (float32, bfloat16 or int8, see :mod:`dgslm.lm.precision`)."""
        paths = paths or resolve_model_paths(**flags)
        device = pick_device(device)
        start = time.perf_counter()
        encoder = None
        if paths.hubert is not None:
            encoder = UnitEncoder.from_pretrained(paths.hubert, paths.kmeans, paths.layer, device)
        data = paths.speech_dlm_data
        lm = SpeechDLM.from_pretrained(paths.speech_dlm, data_name_or_path=Path(data).resolve() if data else ".",
                                       dtype=dtype)  # fmt: skip
        vocoder = UnitVocoder.from_pretrained(paths.vocoder, paths.vocoder_cfg, device)
        logger.info("loaded the models in %.1f s (%s) on %s", time.perf_counter() - start,
                    ", ".join(f"{m}: {s}" for m, s in paths.sources.items()), device)  # fmt: skip
        if demo := [m for m, source in paths.sources.items() if source.startswith("demo ")]:
            logger.warning("using the bundled DEMO models for %s: trained on synthetic espeak-ng speech, not a real "
                           "dialogue model (%s); `dgslm download` fetches the released dGSLM, "
                           "--no-demo / DGSLM_NO_DEMO=1 turns this fallback off",
                           ", ".join(demo), DEMO_DIR / "README.txt")  # fmt: skip
        return cls(encoder, lm.to(device), vocoder, speakers)

    @property
    def sample_rate(self) -> int:
        return self.vocoder.sample_rate

    @property
    def max_frames(self) -> int:
        """Most frames per channel (prompt + continuation) the SpeechDLM can hold."""
        return min(self.lm.cfg.max_positions, 100_000) - 1

    # ---- stages -------------------------------------------------------------------------------
    # Between stages the units travel as (C, T) ids of the SpeechDLM's dictionaries; unit strings
    # only at the edges (encode, the *_units methods, Continuation.units).

    def _unit_values(self, waveform: np.ndarray, sample_rate: int, path: str | os.PathLike | None) -> Tensor:
        """Stereo ``[samples, 2]`` audio -> (2, T) unit values of the units encoder."""
        if self.encoder is None:
            raise DgslmError("this pipeline was loaded without the HuBERT + k-means units encoder, so it "
                             "cannot encode audio; load it with the hubert model to start from audio",
                             path)  # fmt: skip
        need = self.encoder.reader.min_samples
        if round(len(waveform) * SAMPLE_RATE / sample_rate) < need:
            raise DgslmError(f"prompt too short: {len(waveform) / sample_rate * 1000:.1f} ms; one 20 ms unit "
                             f"frame needs {need / SAMPLE_RATE * 1000:g} ms of audio", path)  # fmt: skip
        start = time.perf_counter()
        wave = resample(np.asarray(waveform, dtype=np.float32).reshape(len(waveform), -1), sample_rate, SAMPLE_RATE)
        values = self.encoder.units(torch.from_numpy(np.ascontiguousarray(wave.T)))
        logger.info("encoded %.2f s of prompt into %d frames per channel in %.1f s",
                    len(waveform) / sample_rate, values.shape[1], time.perf_counter() - start)  # fmt: skip
        return values

    def _unit_strings(self, values: Tensor) -> dict[str, str]:
        """(2, T) unit values -> ``{channel: "u u u"}`` (channel 1 -> unitA, 2 -> unitB)."""
        return {channel: units_to_string(row) for channel, row in zip(self.lm.channels, values, strict=True)}

    def encode(
        self, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE, path: str | os.PathLike | None = None
    ) -> dict[str, str]:
        """Stereo ``[samples, 2]`` audio -> ``{channel: "u u u"}`` (channel 1 -> unitA, 2 -> unitB),
        the units as the original tokenizer writes them."""
        return self._unit_strings(self._unit_values(waveform, sample_rate, path))

    def encode_ids(
        self, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE, path: str | os.PathLike | None = None
    ) -> Tensor:
        """Stereo ``[samples, 2]`` audio -> (2, T) SpeechDLM ids (a unit its dictionary lacks is
        ``<unk>``: generated freely)."""
        return self.lm.unit_ids(self._unit_values(waveform, sample_rate, path))

    def continuation_config(
        self,
        prompt_frames: int,
        frames: int,
        num_samples: int,
        config: GenerationConfig,
        path: str | os.PathLike | None = None,
    ) -> GenerationConfig:
        """``config`` for ``num_samples`` continuations of a ``prompt_frames`` prompt by ``frames``
        frames: its output length set, units only. A one-line DgslmError (naming ``path``) when
        prompt + continuation exceed the model's positions (any length is fine with a context
        window, see :mod:`dgslm.lm.generate`; None is the model's training block length)."""
        config = self.lm.resolve_window(config)
        if frames < 1:
            raise DgslmError(f"--seconds must give at least one frame ({1 / FRAME_RATE:g} s), got {frames} frames")
        config.window(self.lm.cfg.max_positions)  # fails if too large
        if not config.context_window and prompt_frames + frames > self.max_frames:
            limit = self.max_frames / FRAME_RATE
            room = (self.max_frames - prompt_frames) / FRAME_RATE
            detail = (f"at most {room:g} s of continuation after this prompt" if room > 0
                      else "shorten the prompt with --prompt-seconds")  # fmt: skip
            detail += ", or go on with a sliding --context-window N (N: the training --tokens-per-sample)"
            raise DgslmError(f"prompt ({prompt_frames} frames) + continuation ({frames} frames) exceeds the model's "
                             f"{self.max_frames} frames ({limit:g} s): {detail}", path)  # fmt: skip
        if num_samples > 1 and not config.sampling:
            raise DgslmError("several samples need sampling: beam search gives the same output every time")
        return dataclasses.replace(config, max_len_a=0, max_len_b=prompt_frames + frames, units_only=True)

    def continue_ids(
        self, prompt: Tensor, config: GenerationConfig, num_samples: int = 1, progress: bool = False
    ) -> list[Tensor]:
        """``num_samples`` continuations, (C, L) ids with the prompt, of a (C, P) ids prompt;
        ``config`` from :meth:`continuation_config`."""
        start = time.perf_counter()
        hypos = self.lm.generate([prompt] * num_samples, config, progress=progress)
        logger.info("generated %d x %d frames in %.1f s", num_samples, config.max_len_b - prompt.shape[1],
                    time.perf_counter() - start)  # fmt: skip
        return [prompt_hypos[0].tokens for prompt_hypos in hypos]

    def continue_units(
        self,
        units: Mapping[str, str],
        frames: int,
        num_samples: int = 1,
        config: GenerationConfig | None = None,
        progress: bool = False,
        **options: Any,
    ) -> list[dict[str, str]]:
        """``num_samples`` continuations of ``{channel: units}`` by ``frames`` frames each
        (prompt included in the result). ``config`` carries the generation options, ``options``
        replace its fields by name (``seed=1, beam=1``); the pipeline sets the output length
        and ``units_only``."""
        prompt = self.lm.encode_prompt(units)
        config = self.continuation_config(prompt.shape[1], frames, num_samples, dialogue_options(config, options))
        return [self.lm.decode(ids) for ids in self.continue_ids(prompt, config, num_samples, progress)]

    def resynthesize(
        self, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE, path: str | os.PathLike | None = None
    ) -> Continuation:
        """Stereo ``[samples, 2]`` audio -> its units and their vocoded audio, nothing generated
        (what the units keep). The units go to the vocoder as encoded, not through the SpeechDLM's
        dictionaries; ``prompt_frames`` is every frame."""
        values = self._unit_values(waveform, sample_rate, path)
        units = self._unit_strings(values)
        return Continuation(units, values.shape[1], self.vocoder.stereo(list(values), self.speakers).numpy())

    def vocode(self, units: Mapping[str, str] | Tensor) -> np.ndarray:
        """``{channel: units}`` or (C, T) SpeechDLM ids -> stereo ``[samples, 2]`` float32 (``hop``
        samples per frame)."""
        codes = list(self.lm.unit_values(units)) if isinstance(units, Tensor) else [units[c] for c in self.lm.channels]
        return self.vocoder.stereo(codes, self.speakers).numpy()

    # ---- end to end ---------------------------------------------------------------------------

    def continue_from_ids(
        self,
        prompt: Tensor,
        config: GenerationConfig,
        num_samples: int = 1,
        continuation_only: bool = False,
        progress: bool = False,
    ) -> list[Continuation]:
        """Continue a (C, P) ids prompt with ``config`` (from :meth:`continuation_config`) and
        vocode each of the ``num_samples`` results."""
        prompt_frames = prompt.shape[1]
        generated = self.continue_ids(prompt, config, num_samples, progress)
        start = time.perf_counter()
        results = []
        for ids in tqdm(generated, desc="vocode", unit="dialogue", disable=not progress):
            audio = self.vocode(ids)
            if continuation_only:
                audio = audio[prompt_frames * self.vocoder.cfg.hop_size :]
            results.append(Continuation(self.lm.decode(ids), prompt_frames, audio))
        logger.info("vocoded %d dialogues in %.1f s", len(results), time.perf_counter() - start)
        return results

    def continue_from_units(
        self,
        units: Mapping[str, str],
        seconds: float,
        num_samples: int = 1,
        continuation_only: bool = False,
        config: GenerationConfig | None = None,
        progress: bool = False,
        **options: Any,
    ) -> list[Continuation]:
        """Continue ``units`` by ``seconds`` and vocode each of the ``num_samples`` results
        (``config`` and ``options``: see :meth:`continue_units`)."""
        prompt = self.lm.encode_prompt(units)
        config = dialogue_options(config, options)
        config = self.continuation_config(prompt.shape[1], round(seconds * FRAME_RATE), num_samples, config)
        return self.continue_from_ids(prompt, config, num_samples, continuation_only, progress)

    def continue_dialogue(
        self,
        waveform: np.ndarray,
        sample_rate: int,
        seconds: float,
        prompt_seconds: float | None = None,
        num_samples: int = 1,
        continuation_only: bool = False,
        allow_mono: bool = False,
        config: GenerationConfig | None = None,
        **options: Any,
    ) -> list[np.ndarray]:
        """Stereo prompt audio -> ``num_samples`` stereo ``[samples, 2]`` arrays at
        :attr:`sample_rate`: the resynthesised prompt then ``seconds`` of continuation
        (``config`` and ``options``: see :meth:`continue_units`)."""
        prompt = self.encode_ids(stereo_prompt(waveform, sample_rate, prompt_seconds, allow_mono))
        config = dialogue_options(config, options)
        config = self.continuation_config(prompt.shape[1], round(seconds * FRAME_RATE), num_samples, config)
        return [r.audio for r in self.continue_from_ids(prompt, config, num_samples, continuation_only)]
