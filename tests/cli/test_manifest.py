"""``dgslm manifest``: the original ``wav2vec_manifest.py`` output."""

from __future__ import annotations

import random

import numpy as np
import soundfile as sf

from dgslm.cli.main import main


def test_train_valid_split_as_the_original_draws_it(tmp_path):
    root = tmp_path / "audio"
    (root / "sub").mkdir(parents=True)
    names = [f"{k:02d}.flac" for k in range(8)] + ["sub/x.flac"]
    for k, name in enumerate(names):
        sf.write(root / name, np.zeros((100 + k, 2), dtype=np.int16), 16000)
    (root / "skip.wav").write_bytes(b"not read: another extension")
    assert main(["manifest", str(root), "--dest", str(tmp_path / "m"), "--valid-percent", "0.4"]) == 0
    rand = random.Random(42)  # the original: one draw per file, valid when it is <= --valid-percent
    expected = {"train": [str(root)], "valid": [str(root)]}
    for k, name in enumerate(names):
        expected["train" if rand.random() > 0.4 else "valid"].append(f"{name}\t{100 + k}")
    for split in ("train", "valid"):
        assert (tmp_path / "m" / f"{split}.tsv").read_text().splitlines() == expected[split]
    assert len(expected["valid"]) > 1 and len(expected["train"]) > 1


def test_path_filter_and_errors(tmp_path, capsys):
    root = tmp_path / "audio"
    (root / "keep").mkdir(parents=True)
    sf.write(root / "keep/a.wav", np.zeros(10), 8000)
    sf.write(root / "b.wav", np.zeros(10), 8000)
    argv = ["manifest", str(root), "--dest", str(tmp_path), "--ext", "wav", "--valid-percent", "0"]
    assert main([*argv, "--path-must-contain", "keep"]) == 0
    assert (tmp_path / "train.tsv").read_text() == f"{root}\nkeep/a.wav\t10\n"
    assert not (tmp_path / "valid.tsv").exists()
    (root / "c.wav").write_bytes(b"RIFF broken")
    assert main(argv) == 1
    assert "c.wav: cannot read audio" in capsys.readouterr().err
    assert (tmp_path / "train.tsv").read_text() == f"{root}\nkeep/a.wav\t10\n"  # left as it was
    assert main(["manifest", str(tmp_path / "nowhere")]) == 1
