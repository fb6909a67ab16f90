"""``dgslm encode`` resumes only the work of a run with the same encoder and options."""

from __future__ import annotations

import shutil

import numpy as np

from dgslm.cli.main import main
from dgslm.encoder.kmeans import save_centers
from dgslm.units.codes import read_code_file


def _kmeans(path, n_clusters, seed):
    save_centers(path, np.random.default_rng(seed).normal(size=(n_clusters, 39)).astype(np.float32) * 5)
    return path


def test_stale_journal_of_other_kmeans_and_channels_is_discarded(reference, tmp_path, capsys):
    audio = tmp_path / "a.wav"
    shutil.copy(reference / "audio" / "stereo_test.wav", audio)
    (tmp_path / "b.wav").write_text("not audio")  # the first run stops here, after a.wav
    km8, km3 = _kmeans(tmp_path / "km8.npy", 8, 0), _kmeans(tmp_path / "km3.npy", 3, 1)
    out = tmp_path / "codes.txt"
    first = ["encode", str(audio), str(tmp_path / "b.wav"), "-o", str(out), "--feature-type", "mfcc"]
    assert main([*first, "--km", str(km8)]) == 1
    assert (tmp_path / ".codes.txt.partial").exists() and not out.exists()
    capsys.readouterr()
    # a rerun with another k-means and other channel names: a fresh result, said in the log
    again = ["encode", str(audio), "-o", str(out), "--feature-type", "mfcc", "--km", str(km3)]
    assert main([*again, "--channels", "left,right"]) == 0
    fresh = tmp_path / "fresh.txt"
    assert main(["encode", str(audio), "-o", str(fresh), "--feature-type", "mfcc", "--km", str(km3),
                 "--channels", "left,right"]) == 0  # fmt: skip
    assert read_code_file(out) == read_code_file(fresh)
    (record,) = read_code_file(out)
    assert max(int(u) for ch in ("left", "right") for u in record[ch].split()) < 3
    assert not (tmp_path / ".codes.txt.partial").exists()


def test_journal_of_same_settings_is_resumed(reference, tmp_path):
    audio = tmp_path / "a.wav"
    shutil.copy(reference / "audio" / "stereo_test.wav", audio)
    (tmp_path / "b.wav").write_text("not audio")
    km = _kmeans(tmp_path / "km.npy", 8, 0)
    out = tmp_path / "codes.txt"
    args = ["-o", str(out), "--feature-type", "mfcc", "--km", str(km)]
    assert main(["encode", str(audio), str(tmp_path / "b.wav"), *args]) == 1
    journal = (tmp_path / ".codes.txt.partial").read_text().splitlines()
    assert len(journal) == 2  # the fingerprint, then a.wav's record
    shutil.copy(audio, tmp_path / "b.wav")
    assert main(["encode", str(audio), str(tmp_path / "b.wav"), *args]) == 0
    a, b = read_code_file(out)
    assert (a["audio"], b["audio"]) == ("a", "b") and a["unitA"] == b["unitA"]
