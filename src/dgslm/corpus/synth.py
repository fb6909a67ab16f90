"""Render a synthetic two-speaker telephone corpus: stereo 16 kHz wavs (one speaker per
channel), a timing JSON per dialogue, a wav2vec-style manifest and a train/valid/test split.

Dialogue ``i`` depends only on ``(seed, i)``, so the corpus is the same byte for byte whatever
the number of workers. Each dialogue is rendered in its own process, which caches the
utterances it synthesised per ``(voice, text)``.
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfiltfilt
from tqdm import tqdm

from dgslm.audio import SAMPLE_RATE, write_wav
from dgslm.corpus.dialogue import TurnTakingConfig, Utterance, plan_dialogue, timeline_events
from dgslm.corpus.voices import Voice, available_voices, synthesize
from dgslm.errors import DgslmError
from dgslm.fileio import atomic_write

logger = logging.getLogger(__name__)


@dataclass
class CorpusConfig:
    hours: float
    seed: int = 0
    min_dialogue_seconds: float = 30.0
    max_dialogue_seconds: float = 90.0
    engines: tuple[str, ...] = ("espeak-ng",)
    speech_dbfs: float = -20.0  # RMS level of an utterance, before the speaker's gain
    speaker_gain_db: float = 3.0  # each speaker's level is shifted by Uniform(-g, g) dB
    noise_dbfs: float = -55.0  # RMS level of the line noise (before band-limiting)
    band: tuple[float, float] = (300.0, 3400.0)  # telephone pass band, Hz
    valid_fraction: float = 0.05
    test_fraction: float = 0.05
    turn_taking: TurnTakingConfig = field(default_factory=TurnTakingConfig)

    def __post_init__(self) -> None:
        if self.hours <= 0:
            raise DgslmError(f"--hours must be positive, got {self.hours}")
        if not 0 < self.min_dialogue_seconds <= self.max_dialogue_seconds:
            raise DgslmError("need 0 < --min-dialogue-seconds <= --max-dialogue-seconds")
        if min(self.valid_fraction, self.test_fraction) < 0 or self.valid_fraction + self.test_fraction >= 1:
            raise DgslmError("--valid-fraction and --test-fraction must be >= 0 and leave dialogues for training")


@functools.lru_cache(maxsize=512)
def _utterance(voice: Voice, text: str) -> np.ndarray:
    wave = synthesize(voice, text)
    wave.flags.writeable = False
    return wave


def dialogue_lengths(cfg: CorpusConfig) -> list[float]:
    """Target length (seconds) of each dialogue: Uniform(min, max) until ``hours`` are reached."""
    rng = np.random.default_rng([cfg.seed, 0])
    lengths: list[float] = []
    while sum(lengths) < cfg.hours * 3600:
        lengths.append(float(rng.uniform(cfg.min_dialogue_seconds, cfg.max_dialogue_seconds)))
    return lengths


def telephone(channel: np.ndarray, rng: np.random.Generator, cfg: CorpusConfig) -> np.ndarray:
    """Add line noise and band-limit to the telephone band (zero-phase, so timings stay put)."""
    noisy = channel + 10 ** (cfg.noise_dbfs / 20) * rng.standard_normal(channel.shape[0])
    sos = butter(4, cfg.band, btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return np.clip(sosfiltfilt(sos, noisy), -1.0, 1.0).astype(np.float32)


def render_dialogue(index: int, seconds: float, cfg: CorpusConfig) -> tuple[np.ndarray, list[Utterance], list[Voice]]:
    """Dialogue ``index``: ``[frames, 2]`` float32 audio, its utterances and the two voices."""
    rng = np.random.default_rng([cfg.seed, 1, index])
    pool = available_voices(cfg.engines)
    voices = [pool[i] for i in rng.choice(len(pool), size=2, replace=False)]
    gains = 10 ** ((cfg.speech_dbfs + rng.uniform(-cfg.speaker_gain_db, cfg.speaker_gain_db, size=2)) / 20)
    utterances, total = plan_dialogue(rng, seconds, lambda c, text: len(_utterance(voices[c], text)), cfg.turn_taking)
    audio = np.zeros((2, total), dtype=np.float64)
    for u in utterances:
        wave = _utterance(voices[u.channel], u.text)
        audio[u.channel, u.start : u.end] += wave * (gains[u.channel] / np.sqrt(np.mean(wave**2)))
    stereo = np.stack([telephone(audio[c], rng, cfg) for c in range(2)], axis=1)
    return stereo, utterances, voices


def timing_record(name: str, utterances: list[Utterance], total: int, voices: list[Voice]) -> dict:
    """The timing JSON of one dialogue: utterances (channel, start, end in seconds, text, kind)
    and the derived IPUs, pauses, gaps and overlaps."""
    return {
        "audio": name,
        "sample_rate": SAMPLE_RATE,
        "duration": total / SAMPLE_RATE,
        "voices": [v.label for v in voices],
        "utterances": [
            {
                "channel": u.channel,
                "start": u.start / SAMPLE_RATE,
                "end": u.end / SAMPLE_RATE,
                "text": u.text,
                "kind": u.kind,
            }
            for u in utterances
        ],
        **timeline_events(utterances, total),
    }


def write_dialogue(job: tuple[Path, int, float, CorpusConfig]) -> tuple[int, int, float]:
    """Render and write dialogue ``index``; returns ``(index, frames, CPU seconds spent)``."""
    out, index, seconds, cfg = job
    began = time.process_time()
    stereo, utterances, voices = render_dialogue(index, seconds, cfg)
    name = f"dialogue_{index:06d}"
    write_wav(out / "wav" / f"{name}.wav", stereo)
    with atomic_write(out / "timing" / f"{name}.json") as handle:
        json.dump(timing_record(f"wav/{name}.wav", utterances, stereo.shape[0], voices), handle, indent=1)
        handle.write("\n")
    return index, stereo.shape[0], time.process_time() - began


def split_indices(count: int, cfg: CorpusConfig) -> dict[str, list[int]]:
    """Random train/valid/test split; valid and test get at least one dialogue once there are
    enough (2 and 3), train always keeps one."""
    order = np.random.default_rng([cfg.seed, 2]).permutation(count).tolist()
    n_valid = max(int(count >= 2), round(cfg.valid_fraction * count))
    n_test = max(int(count >= 3), round(cfg.test_fraction * count))
    valid, test = order[:n_valid], order[n_valid : n_valid + n_test]
    return {"train": sorted(order[n_valid + n_test :]), "valid": sorted(valid), "test": sorted(test)}


def write_manifest(path: Path, root: Path, rows: list[tuple[str, int]]) -> None:
    """wav2vec manifest: the root folder, then ``relative path<TAB>frames`` per file."""
    with atomic_write(path) as handle:
        handle.write(f"{root}\n")
        handle.writelines(f"{rel}\t{frames}\n" for rel, frames in rows)


def synth_corpus(out: str | Path, cfg: CorpusConfig, workers: int = 1) -> dict:
    """Write the corpus under ``out``; returns a summary (counts, hours, speed)."""
    out = Path(out).resolve()
    available_voices(cfg.engines)  # fail early when an engine is missing
    lengths = dialogue_lengths(cfg)
    jobs = [(out, i, seconds, cfg) for i, seconds in enumerate(lengths)]
    logger.info("synthesising %d dialogues (%.2f h) into %s with %d worker(s)", len(jobs), cfg.hours, out, workers)
    frames: dict[int, int] = {}
    cpu_seconds = 0.0
    began = time.perf_counter()
    # libespeak-ng carries state from one utterance to the next, so each dialogue is rendered in
    # a fresh process (forked from a server that never synthesised): its bytes then depend only
    # on (seed, index), whatever the workers and whatever this process did before.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["dgslm.corpus.synth", "soundfile", "soxr"])
    with context.Pool(max(1, workers), maxtasksperchild=1) as pool:
        results = pool.imap_unordered(write_dialogue, jobs)
        for index, count, cpu in tqdm(results, total=len(jobs), desc="synth-corpus", unit="dialogue"):
            frames[index] = count
            cpu_seconds += cpu
    elapsed = time.perf_counter() - began
    rows = [(f"wav/dialogue_{i:06d}.wav", frames[i]) for i in range(len(jobs))]
    write_manifest(out / "manifest.tsv", out, rows)
    for split, indices in split_indices(len(jobs), cfg).items():
        write_manifest(out / f"{split}.tsv", out, [rows[i] for i in indices])
    audio_seconds = sum(frames.values()) / SAMPLE_RATE
    with atomic_write(out / "corpus.json") as handle:
        json.dump({"config": asdict(cfg), "dialogues": len(jobs), "hours": audio_seconds / 3600}, handle, indent=1)
        handle.write("\n")
    summary = {
        "dialogues": len(jobs),
        "hours": audio_seconds / 3600,
        "wall_seconds": elapsed,
        "real_time_factor": audio_seconds / max(elapsed, 1e-9),
        "real_time_factor_per_cpu": audio_seconds / max(cpu_seconds, 1e-9),
    }
    logger.info(
        "wrote %d dialogues, %.3f h of audio in %.1f s: %.0fx faster than real time (%.0fx per CPU second)",
        summary["dialogues"],
        summary["hours"],
        elapsed,
        summary["real_time_factor"],
        summary["real_time_factor_per_cpu"],
    )
    return summary
