"""k-means: the original pickles (old and new scikit-learn), our centroid files, assignment."""

from __future__ import annotations

import json
import pickle

import joblib
import numpy as np
import pytest
import torch

from dgslm.audio import load_audio
from dgslm.encoder.hubert_checkpoint import load_hubert
from dgslm.encoder.kmeans import KMeansQuantizer, convert, load_centers, save_centers, save_sklearn_pickle
from dgslm.errors import DgslmError


def test_old_sklearn_pickle_labels_its_features(reference):
    km = KMeansQuantizer.from_file(reference / "kmeans" / "km_sk0242_50.bin")
    feats = np.load(reference / "kmeans" / "features_1000x768.npy")
    expected = np.load(reference / "kmeans" / "labels_sk0242.npy")
    assert km.n_clusters == 50 and km.dim == 768
    np.testing.assert_array_equal(km(torch.from_numpy(feats)).numpy(), expected)
    # batching does not change the result
    np.testing.assert_array_equal(km(torch.from_numpy(feats), batch_size=7).numpy(), expected)


def test_km50_labels_of_every_reference_array(reference):
    labels = json.loads((reference / "kmeans" / "km50_labels.json").read_text())["labels"]
    km = KMeansQuantizer.from_file(reference / "kmeans" / "km50.bin")
    hubert = load_hubert(reference / "hubert" / "hubert_small.pt")
    ls, _ = load_audio(reference / "audio" / "ls.flac")
    stereo, _ = load_audio(reference / "audio" / "stereo_test.wav")
    waves = {
        "ls_full": ls[:, 0],
        "ls_3s": ls[:48000, 0],
        "stereo_ch1": stereo[:, 0],
        "stereo_ch2": stereo[:, 1],
        "stereo_mix": stereo.mean(1),
    }
    assert set(labels) == set(waves)
    for name, wave in waves.items():
        units = km(hubert.extract_features(torch.from_numpy(np.ascontiguousarray(wave)), 3))
        assert units.tolist() == labels[name]["labels"], name


def test_converted_files_load_without_unpickling(reference, tmp_path, monkeypatch):
    centers = load_centers(reference / "kmeans" / "km_sk0242_50.bin")
    convert(reference / "kmeans" / "km_sk0242_50.bin", tmp_path / "km.safetensors")
    save_centers(tmp_path / "km.npy", centers)
    monkeypatch.setattr(pickle, "Unpickler", None)  # any unpickling attempt would fail
    np.testing.assert_array_equal(load_centers(tmp_path / "km.safetensors"), centers)
    np.testing.assert_array_equal(load_centers(tmp_path / "km.npy"), centers)


def test_sklearn_compatible_pickle_for_the_original_tools(reference, tmp_path):
    centers = load_centers(reference / "kmeans" / "km_sk0242_50.bin")
    save_sklearn_pickle(tmp_path / "km.bin", centers)
    feats = np.load(reference / "kmeans" / "features_1000x768.npy")
    original = joblib.load(tmp_path / "km.bin")  # what the original's ApplyKmeans / predict do
    np.testing.assert_array_equal(original.predict(feats), np.load(reference / "kmeans" / "labels_sk0242.npy"))
    np.testing.assert_array_equal(load_centers(tmp_path / "km.bin"), centers)


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_pickle_running_code_is_refused(tmp_path, caplog):
    joblib.dump({"cluster_centers_": _Exploit()}, tmp_path / "evil.bin")
    with pytest.raises(DgslmError, match="evil.bin.*forbidden global"):
        load_centers(tmp_path / "evil.bin")
    assert "can run code" in caplog.text
    with pytest.raises(DgslmError, match="no such"):
        load_centers(tmp_path / "missing.bin")


def test_ties_resolve_to_the_lowest_index():
    km = KMeansQuantizer(np.array([[0.0, 1.0], [0.0, -1.0], [0.0, 1.0]], dtype=np.float32))
    assert km(torch.tensor([[0.0, 0.0], [0.0, 2.0], [0.0, -3.0]])).tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="dims"):
        km(torch.zeros(3, 5))
