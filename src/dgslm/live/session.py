"""``DuplexSession``: talk with a SpeechDLM, 20 ms in, 20 ms out.

>>> s = DuplexSession.from_pretrained()      # the bundled demo models unless others are found
>>> out = s.step(pcm)                         # pcm: float32 (320,) in [-1, 1] at 16 kHz
>>> s.stats()["algorithmic_latency_ms"]

Per call: the person's frame goes to :class:`StreamingUnits`; when their unit of frame t - 1
is final, :class:`DialogueStep` feeds it and samples the model's unit of frame t, which goes
to :class:`StreamingVocoder` (a window of units, or from 21 units of look-ahead an exact
layer-by-layer stream); its audio comes back ``lookahead`` frames later. The audio
returned by call k is the model's frame ``k - units.lookahead - vocoder.lookahead`` (silence
before), played from the end of frame k: the model is heard
``algorithmic_latency_ms = (units look-ahead + vocoder look-ahead + 1) * 20`` ms after the
offline alignment of the same units.

Falling behind: every call's compute is timed; a call over the 20 ms frame is a "late frame"
and a backlog (compute beyond 20 ms per frame, never below 0) is kept; the first late
frame and every 50th are logged as warnings. With ``catch_up``
(live use: ``dgslm duplex --realtime``), while the backlog exceeds one frame the session
skips frames: the model's unit is its previous unit (held, no forward pass), the person's
unit is fed later, the vocoder is not run and the model's audio of that frame is silence;
every skip is counted (``skipped_frames``) and logged (the first, then every 50th). Without
``catch_up`` (the default, deterministic) nothing is skipped and late frames are only counted
and logged.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence

import numpy as np
import torch

from dgslm.audio import SAMPLE_RATE
from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.errors import DgslmError
from dgslm.live.dialogue import DialogueStep
from dgslm.live.units import StreamingUnits, exact_lookahead
from dgslm.live.vocoder import StreamingVocoder
from dgslm.lm.generate import GenerationConfig
from dgslm.lm.hub import SpeechDLM
from dgslm.vocoder.unit_vocoder import UnitVocoder

logger = logging.getLogger(__name__)

FRAME_SAMPLES = 320  # 20 ms at 16 kHz: one unit frame
FRAME_MS = 1000 * FRAME_SAMPLES / SAMPLE_RATE
DEFAULT_UNIT_LOOKAHEAD = 2  # frames (see docs/live.md for the agreement table)
HUBERT_CONTEXT = 50  # frames of left context of a streaming HuBERT window
DEFAULT_VOCODER_CONTEXT, DEFAULT_VOCODER_LOOKAHEAD = 4, 2
WARM_UP_FRAMES = 12  # silent frames run by from_pretrained before the session starts
LATE_REPORT_EVERY = 50  # late frames between two "falling behind" warnings


class DuplexSession:
    """One live dialogue: the person on ``user_channel``, the model on the other."""

    sample_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES

    def __init__(
        self,
        encoder: UnitEncoder,
        lm: SpeechDLM,
        vocoder: UnitVocoder,
        config: GenerationConfig | None = None,
        seed: int | None = None,
        user_channel: int = 0,
        speaker: int = 4,
        unit_lookahead: int | None = None,
        vocoder_context: int = DEFAULT_VOCODER_CONTEXT,
        vocoder_lookahead: int = DEFAULT_VOCODER_LOOKAHEAD,
        catch_up: bool = False,
        unit_context: int = HUBERT_CONTEXT,
    ):
        """``config``: the sampling options (a :class:`GenerationConfig`; its ``seed`` unless
        ``seed`` is given; no seed at all draws from torch's global generator, not repeatable).
        ``unit_lookahead`` None: the default (2 frames, or 0 when units are exact without);
        ``unit_context``: frames of left context of a windowed (HuBERT) unit encoder.
        ``speaker``: the vocoder's speaker id of the model's voice (multi-speaker vocoders)."""
        if vocoder.sample_rate != SAMPLE_RATE or vocoder.cfg.hop_size != FRAME_SAMPLES:
            raise DgslmError(f"the live engine needs a 16 kHz vocoder with {FRAME_SAMPLES} samples per unit")
        if unit_lookahead is None:
            exact = exact_lookahead(encoder)
            unit_lookahead = DEFAULT_UNIT_LOOKAHEAD if exact is None else min(exact, DEFAULT_UNIT_LOOKAHEAD)
        self.units = StreamingUnits(encoder, unit_lookahead, unit_context)
        config = config or GenerationConfig()
        if seed is not None:
            config = dataclasses.replace(config, seed=seed)
        self.options = dict(config=config, seed=None, user_channel=user_channel, speaker=speaker,
                            unit_lookahead=unit_lookahead, vocoder_context=vocoder_context,
                            vocoder_lookahead=vocoder_lookahead, catch_up=catch_up, unit_context=unit_context)  # fmt: skip
        self.dialogue = DialogueStep(lm, config, user_channel)
        self.vocoder = StreamingVocoder(vocoder, speaker, vocoder_context, vocoder_lookahead)
        self.user_channel = user_channel
        self.catch_up = catch_up
        self.clock = time.perf_counter  # seconds; the compute of a frame is timed with it
        self.reset()

    @classmethod
    def from_pretrained(
        cls,
        config: GenerationConfig | None = None,
        seed: int | None = None,
        user_channel: int = 0,
        device: str | torch.device | None = None,
        speakers: Sequence[int] = (0, 4),
        paths=None,
        dtype: str | torch.dtype | None = None,
        **kwargs,
    ) -> DuplexSession:
        """Load the models like ``dgslm generate`` (``paths`` or the flags of
        :func:`dgslm.models.resolve.resolve_model_paths` in ``kwargs``: hubert, km, layer,
        speech_dlm, speech_dlm_data, vocoder, vocoder_cfg, no_demo; the bundled demo by
        default). The model speaks with ``speakers[model channel]``; ``dtype``: the SpeechDLM's
        decoding weights (float32, bfloat16 or int8, see :mod:`dgslm.lm.precision`). Other ``kwargs``:
        the engine options of :class:`DuplexSession` (unit_lookahead, unit_context,
        vocoder_context, vocoder_lookahead, catch_up)."""
        from dgslm.pipeline.dialogue import DialoguePipeline

        flags = {k: kwargs.pop(k) for k in list(kwargs) if k in PATH_FLAGS}
        pipe = DialoguePipeline.from_pretrained(paths, device, speakers, dtype, **flags)
        session = cls(pipe.encoder, pipe.lm, pipe.vocoder, config, seed, user_channel,
                      speakers[1 - user_channel], **kwargs)  # fmt: skip
        session.warm_up()
        return session

    def warm_up(self, frames: int = WARM_UP_FRAMES) -> None:
        """Run ``frames`` frames of silence, then :meth:`reset`: the first calls of a fresh process
        are slow (kernel selection, allocations), and a live session should not start behind."""
        for _ in range(frames):
            self._step(np.zeros(FRAME_SAMPLES, dtype=np.float32))  # untimed: no late-frame warnings
        self.reset()

    def new_session(self, **overrides) -> DuplexSession:
        """A new, independent session on the same models (loaded once, shared read-only: e.g. one
        session per connection of a server). ``overrides``: options of :class:`DuplexSession`
        (seed, user_channel, speaker, config, catch_up, ...)."""
        encoder, lm, vocoder = self.units.encoder, self.dialogue.lm, self.vocoder.vocoder
        return DuplexSession(encoder, lm, vocoder, **(self.options | overrides))

    # ---- the session ------------------------------------------------------------------------

    @property
    def algorithmic_latency_ms(self) -> float:
        """Look-aheads + one frame, in ms (see the module docstring)."""
        return (self.units.lookahead + self.vocoder.lookahead + 1) * FRAME_MS

    @property
    def delay_frames(self) -> int:
        """Frames from a call to the call that returns the model's audio of the same frame."""
        return self.units.lookahead + self.vocoder.lookahead

    def reset(self) -> None:
        """A new session (same seed -> same output)."""
        self.units.reset()
        self.dialogue.reset()
        self.vocoder.reset()
        self.compute_ms: list[float] = []
        self.backlog_ms = 0.0
        self.late = 0
        self.skipped = 0
        self.deferred: list[int] = []  # the person's units not yet fed (skipped frames)
        self.user_units: list[int] = []  # the units of both channels, as the model saw them
        self.model_units: list[int] = []

    def step(self, pcm: np.ndarray) -> np.ndarray:
        """The person's 20 ms (float32 ``(320,)`` in [-1, 1]) -> the model's 20 ms."""
        start = self.clock()
        frame = np.asarray(pcm)
        if frame.shape != (FRAME_SAMPLES,):
            raise DgslmError(f"a live frame is {FRAME_SAMPLES} samples (20 ms at 16 kHz) of one channel, "
                             f"got an array of shape {frame.shape}")  # fmt: skip
        if not np.issubdtype(frame.dtype, np.floating) or not np.isfinite(frame).all():
            raise DgslmError(f"a live frame must hold finite float samples in [-1, 1], got {frame.dtype}")
        out = self._step(np.clip(frame.astype(np.float32), -1.0, 1.0))
        elapsed = (self.clock() - start) * 1000
        self.compute_ms.append(elapsed)
        self.backlog_ms = max(0.0, self.backlog_ms + elapsed - FRAME_MS)
        if elapsed > FRAME_MS:
            self.late += 1
            if self.late == 1 or self.late % LATE_REPORT_EVERY == 0:
                logger.warning("falling behind real time: %d of %d frames took over %.0f ms (frame %d: %.1f ms)%s",
                               self.late, len(self.compute_ms), FRAME_MS, len(self.compute_ms), elapsed,
                               "" if self.catch_up else "; nothing is skipped (catch_up is off)")  # fmt: skip
        return out

    def _step(self, frame: np.ndarray) -> np.ndarray:
        user = self.units.push(frame)
        silence = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        if self.units.pushed <= self.units.lookahead:
            return silence  # the model's first unit waits for the person's look-ahead
        if user is not None:
            self.deferred.append(user)
            self.user_units.append(user)
        if self.catch_up and self.backlog_ms > FRAME_MS and self.model_units:
            self.skipped += 1
            if self.skipped == 1 or self.skipped % LATE_REPORT_EVERY == 0:
                logger.warning("behind real time by %.0f ms: %d frames skipped so far (model unit held, no audio)",
                               self.backlog_ms, self.skipped)  # fmt: skip
            self.model_units.append(self.dialogue.hold())
            self.vocoder.skip(self.model_units[-1])
            return silence
        for earlier in self.deferred[:-1]:  # frames skipped before: feed them now
            self.dialogue.feed(earlier)
        unit = self.dialogue.advance(self.deferred[-1] if self.deferred else None)
        self.deferred.clear()
        self.model_units.append(unit)
        audio = self.vocoder.push(unit)
        return silence if audio is None else audio

    def unit_history(self) -> dict[str, str]:
        """``{channel: "u u u"}``: the frames of the session both channels have units for."""
        n = min(len(self.user_units), len(self.model_units))
        channels = self.dialogue.lm.channels
        return {channels[self.user_channel]: " ".join(map(str, self.user_units[:n])),
                channels[1 - self.user_channel]: " ".join(map(str, self.model_units[:n]))}  # fmt: skip

    def stats(self) -> dict:
        """frames, algorithmic latency, per-frame compute p50/p95/max (ms), late frames (compute
        over 20 ms), skipped frames, real-time factor (compute time / audio time)."""
        ms = np.asarray(self.compute_ms or [0.0])
        frames = len(self.compute_ms)
        return {
            "frames": frames,
            "algorithmic_latency_ms": self.algorithmic_latency_ms,
            "compute_ms_p50": float(np.percentile(ms, 50)),
            "compute_ms_p95": float(np.percentile(ms, 95)),
            "compute_ms_max": float(ms.max()),
            "late_frames": self.late,
            "skipped_frames": self.skipped,
            "real_time_factor": float(ms.sum() / (frames * FRAME_MS)) if frames else 0.0,
        }


PATH_FLAGS = ("hubert", "km", "layer", "speech_dlm", "speech_dlm_data", "vocoder", "vocoder_cfg", "cache", "demo",
              "no_demo")  # fmt: skip
