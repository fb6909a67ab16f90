"""``dgslm synth-corpus`` end to end, and its one-line errors."""

from __future__ import annotations

import json

import soundfile as sf

from dgslm.cli.main import main


def test_synth_corpus_command(tmp_path):
    out = tmp_path / "corpus"
    argv = [
        "synth-corpus",
        "--out",
        str(out),
        "--hours",
        "0.005",
        "--seed",
        "1",
        "--min-dialogue-seconds",
        "6",
        "--max-dialogue-seconds",
        "8",
        "--workers",
        "1",
    ]
    assert main(argv) == 0
    summary = json.loads((out / "corpus.json").read_text())
    assert summary["config"]["seed"] == 1 and summary["dialogues"] >= 2
    wavs = sorted((out / "wav").glob("*.wav"))
    assert len(wavs) == summary["dialogues"] == len(list((out / "timing").glob("*.json")))
    assert sf.info(str(wavs[0])).channels == 2
    assert len((out / "manifest.tsv").read_text().splitlines()) == len(wavs) + 1


def test_synth_corpus_rejects_bad_lengths(tmp_path, capsys):
    argv = [
        "synth-corpus",
        "--out",
        str(tmp_path),
        "--hours",
        "0.01",
        "--min-dialogue-seconds",
        "20",
        "--max-dialogue-seconds",
        "10",
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--min-dialogue-seconds" in err[0]
    assert not any(tmp_path.iterdir())
