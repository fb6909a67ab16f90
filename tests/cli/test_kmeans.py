"""``dgslm kmeans``: learning a quantiser on log-mel/MFCC/HuBERT features, converting pickles."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

from dgslm.audio import load_audio
from dgslm.cli.main import main
from dgslm.encoder.features import MfccFeatures
from dgslm.encoder.inputs import AudioItem
from dgslm.encoder.kmeans import KMeansQuantizer, load_centers
from dgslm.encoder.kmeans_fit import sample_items


@pytest.mark.parametrize("backend", ["faiss", "sklearn"])
def test_learn_on_mfcc_then_encode(reference, tmp_path, backend):
    audio = [str(reference / "audio" / "stereo_test.wav"), str(reference / "audio" / "ls.flac")]
    out = tmp_path / "km.safetensors"
    assert (
        main(
            [
                "kmeans",
                *audio,
                "-o",
                str(out),
                "--n-clusters",
                "8",
                "--feature-type",
                "mfcc",
                "--backend",
                backend,
                "--n-init",
                "1",
                "--max-iter",
                "20",
            ]
        )
        == 0
    )
    centers = load_centers(out)
    assert centers.shape == (8, 39) and np.isfinite(centers).all()
    # the units of its training audio use several clusters
    wave, _ = load_audio(audio[0])
    feats = MfccFeatures()(torch.from_numpy(np.ascontiguousarray(wave.T))).reshape(-1, 39)
    units = KMeansQuantizer(centers)(feats)
    assert units.unique().numel() > 1
    # the scikit-learn pickle for the original tools predicts the same units
    original = joblib.load(tmp_path / "km.bin")
    np.testing.assert_array_equal(original.predict(feats.numpy()), units.numpy())
    assert (
        main(["encode", audio[0], "-o", str(tmp_path / "codes.txt"), "--km", str(out), "--feature-type", "mfcc"]) == 0
    )
    assert (
        (tmp_path / "codes.txt")
        .read_text()
        .startswith("{'audio': 'stereo_test', 'unitA': '" + " ".join(map(str, units[:3].tolist())))
    )


def test_learn_on_hubert_layer(reference, tmp_path):
    out = tmp_path / "km.npy"
    assert (
        main(
            [
                "kmeans",
                str(reference / "audio" / "stereo_test.wav"),
                "-o",
                str(out),
                "--n-clusters",
                "4",
                "--hubert",
                str(reference / "hubert" / "hubert_small.pt"),
                "--layer",
                "2",
                "--n-init",
                "1",
                "--no-sklearn-pickle",
            ]
        )
        == 0
    )
    assert np.load(out).shape == (4, 96) and not (tmp_path / "km.bin").exists()


def test_convert_and_errors(reference, tmp_path, capsys):
    out = tmp_path / "km50.safetensors"
    assert main(["kmeans", "--convert", str(reference / "kmeans" / "km50.bin"), "-o", str(out)]) == 0
    np.testing.assert_array_equal(load_centers(out), joblib.load(reference / "kmeans" / "km50.bin").cluster_centers_)
    wav = str(reference / "audio" / "stereo_test.wav")
    assert (
        main(["kmeans", wav, "-o", str(tmp_path / "k.safetensors"), "--n-clusters", "1000", "--feature-type", "logmel"])
        == 1
    )
    assert "only 318 frames for 1000 clusters" in capsys.readouterr().err
    assert main(["kmeans", wav, "-o", str(tmp_path / "k.safetensors")]) == 1
    assert "--hubert" in capsys.readouterr().err
    assert main(["kmeans", wav, "-o", str(tmp_path / "k.bin")]) == 1


def test_percent_sampling_is_seeded_and_ordered():
    items = [AudioItem(Path(f"f{i}.wav")) for i in range(10)]
    picked = sample_items(items, 0.3, seed=1)
    assert len(picked) == 3 and picked == sample_items(items, 0.3, seed=1)
    assert [items.index(p) for p in picked] == sorted(items.index(p) for p in picked)
    assert sample_items(items, -1) == items
