"""The rendered corpus: determinism, audio format, timings that match the audio, splits."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dgslm.corpus.synth import CorpusConfig, synth_corpus
from dgslm.corpus.voices import ESPEAK_VOICES, synthesize

SR = 16_000


def config(seed: int) -> CorpusConfig:
    return CorpusConfig(hours=0.01, seed=seed, min_dialogue_seconds=10, max_dialogue_seconds=15)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    synth_corpus(out, config(5), workers=1)
    return out


def digests(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".wav", ".json"))
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def manifest(path: Path) -> tuple[str, list[tuple[str, int]]]:
    root, *rows = path.read_text().splitlines()
    return root, [(rel, int(frames)) for rel, frames in (row.split("\t") for row in rows)]


def test_same_seed_same_bytes_whatever_the_workers(corpus, tmp_path):
    synthesize(ESPEAK_VOICES[0], "libespeak-ng keeps state from one utterance to the next")
    synth_corpus(tmp_path / "again", config(5), workers=2)
    synth_corpus(tmp_path / "other", config(6), workers=1)
    first = digests(corpus)
    assert len(first) >= 6 and first == digests(tmp_path / "again")
    assert manifest(corpus / "manifest.tsv")[1] == manifest(tmp_path / "again" / "manifest.tsv")[1]
    other = digests(tmp_path / "other")
    assert not set(first.items()) & set(other.items())


def test_manifest_and_split(corpus):
    root, rows = manifest(corpus / "manifest.tsv")
    assert Path(root) == corpus.resolve() and len(rows) >= 3
    seen = []
    for split in ("train", "valid", "test"):
        split_root, split_rows = manifest(corpus / f"{split}.tsv")
        assert split_root == root and split_rows
        seen += split_rows
    assert sorted(seen) == rows
    for rel, frames in rows:
        info = sf.info(str(Path(root) / rel))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (SR, 2, frames, "PCM_16")


def rms_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-12)


def test_timings_match_the_audio(corpus):
    margin = int(0.05 * SR)  # band-pass filter ringing around utterance edges
    kinds = set()
    for path in sorted((corpus / "timing").glob("*.json")):
        timing = json.loads(path.read_text())
        audio, sr = sf.read(str(corpus / timing["audio"]), dtype="float32")
        assert sr == SR and audio.shape == (round(timing["duration"] * SR), 2)
        for channel in (0, 1):
            mine = [u for u in timing["utterances"] if u["channel"] == channel]
            speaking = np.zeros(len(audio), dtype=bool)
            for u in mine:
                start, end = round(u["start"] * SR), round(u["end"] * SR)
                assert rms_db(audio[start:end, channel]) > -35, u  # speech in its own channel
                speaking[max(0, start - margin) : end + margin] = True
                kinds.add(u["kind"])
            assert rms_db(audio[~speaking, channel]) < -55  # only line noise elsewhere
        for u in timing["utterances"]:
            if u["kind"] == "backchannel":
                holder = [t for t in timing["utterances"] if t["kind"] == "turn" and t["start"] <= u["start"]][-1]
                assert holder["channel"] != u["channel"]
        assert {"ipus", "pauses", "gaps", "overlaps"} <= set(timing)
    assert kinds == {"turn", "backchannel"}


def test_telephone_band(corpus):
    audio, sr = sf.read(str(next((corpus / "wav").glob("*.wav"))), dtype="float32")
    for channel in (0, 1):
        power = np.abs(np.fft.rfft(audio[:, channel])) ** 2
        freqs = np.fft.rfftfreq(len(audio), 1 / sr)
        inside = power[(freqs >= 300) & (freqs <= 3400)].sum()
        assert inside / power.sum() > 0.95
