"""Learn a k-means quantiser on frame features of the user's audio.

Frames come from a ``percent`` sample of the files (every channel is an utterance), as the
original ``learn_kmeans.py``; the fit uses faiss when installed, else scikit-learn's
``MiniBatchKMeans`` with the original's settings (k-means++, batch 10000, tol 0,
max_no_improvement 100, reassignment_ratio 0).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from dgslm.audio import load_audio
from dgslm.encoder.features import FeatureReader
from dgslm.encoder.inputs import AudioItem
from dgslm.errors import DgslmError

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "faiss", "sklearn")


@dataclass
class KMeansFitConfig:
    n_clusters: int = 500
    seed: int = 0
    max_iter: int = 100
    batch_size: int = 10_000  # scikit-learn mini-batch size
    n_init: int = 20
    backend: str = "auto"


def sample_items(items: Sequence[AudioItem], percent: float, seed: int = 0) -> list[AudioItem]:
    """A random ``percent`` (0..1] of the files in their original order; -1 keeps all."""
    if percent < 0 or percent >= 1:
        return list(items)
    if percent == 0:
        raise DgslmError("--percent must be > 0 (or -1 for all files)")
    count = max(1, math.ceil(len(items) * percent))
    keep = np.sort(np.random.default_rng(seed).choice(len(items), size=count, replace=False))
    return [items[i] for i in keep]


def collect_features(reader: FeatureReader, items: Sequence[AudioItem], skip_bad: bool = False) -> np.ndarray:
    """[frames, D] float32 features of every channel of every file."""
    feats: list[np.ndarray] = []
    for item in tqdm(items, desc="features", unit="file"):
        try:
            wave, _ = load_audio(item.path)
            if len(wave) < reader.min_samples:
                raise item.error(f"too short for one frame ({len(wave)} samples)")
        except DgslmError as err:
            if not skip_bad:
                raise
            logger.warning("skipping %s", err)
            continue
        with torch.inference_mode():
            out = reader(torch.from_numpy(np.ascontiguousarray(wave.T)))
        feats.append(out.reshape(-1, out.shape[-1]).float().cpu().numpy())
    if not feats:
        raise DgslmError("no features: every input was skipped")
    return np.concatenate(feats)


def fit_kmeans(feats: np.ndarray, cfg: KMeansFitConfig) -> np.ndarray:
    """[K, D] float32 centres of a k-means fit on ``feats`` [N, D]."""
    if len(feats) < cfg.n_clusters:
        raise DgslmError(f"only {len(feats)} frames for {cfg.n_clusters} clusters; give more audio or fewer clusters")
    backend = cfg.backend
    if backend == "auto":
        try:
            import faiss  # noqa: F401

            backend = "faiss"
        except ImportError:
            backend = "sklearn"
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    logger.info("k-means (%s): %d clusters on %d frames of %d dims", backend, cfg.n_clusters, *feats.shape)
    if backend == "faiss":
        import faiss

        km = faiss.Kmeans(
            feats.shape[1],
            cfg.n_clusters,
            niter=cfg.max_iter,
            nredo=cfg.n_init,
            seed=cfg.seed,
            max_points_per_centroid=max(256, math.ceil(len(feats) / cfg.n_clusters)),
        )
        km.train(feats)
        return np.asarray(km.centroids, dtype=np.float32)
    if backend == "sklearn":
        from sklearn.cluster import MiniBatchKMeans

        km = MiniBatchKMeans(
            n_clusters=cfg.n_clusters,
            init="k-means++",
            max_iter=cfg.max_iter,
            batch_size=cfg.batch_size,
            tol=0.0,
            max_no_improvement=100,
            n_init=cfg.n_init,
            reassignment_ratio=0.0,
            compute_labels=False,
            random_state=cfg.seed,
        )
        km.fit(feats)
        return np.asarray(km.cluster_centers_, dtype=np.float32)
    raise DgslmError(f"unknown k-means backend {backend!r}; choose from {', '.join(BACKENDS)}")
