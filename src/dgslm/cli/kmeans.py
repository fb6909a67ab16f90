"""``dgslm kmeans``: learn a k-means unit quantiser on features of your audio, or convert an
original k-means pickle into our centroid file.

Writes our centroid file (``--output``, .safetensors or .npy) and, unless
``--no-sklearn-pickle``, a scikit-learn ``MiniBatchKMeans`` joblib pickle beside it
(``<output stem>.bin``) that the original's tools read."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dgslm.audio import AUDIO_EXTENSIONS

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", help="audio files, folders (searched recursively) or .tsv manifests")
    parser.add_argument(
        "-o", "--output", required=True, type=Path, help="centroid file to write (.safetensors or .npy)"
    )
    parser.add_argument(
        "--convert",
        type=Path,
        default=None,
        metavar="PICKLE",
        help="convert this original joblib k-means pickle into --output instead of learning",
    )
    parser.add_argument("--n-clusters", "--n_clusters", dest="n_clusters", type=int, default=500)
    parser.add_argument(
        "--feature-type", "--feature_type", dest="feature_type", default="hubert", choices=("hubert", "logmel", "mfcc")
    )
    parser.add_argument(
        "--hubert", "--acoustic_model_path", dest="hubert", help="HuBERT checkpoint (original fairseq .pt)"
    )
    parser.add_argument("--layer", type=int, default=12, help="HuBERT layer (1-based)")
    parser.add_argument("--percent", type=float, default=-1.0, help="fraction of files to sample (-1: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-iter", "--max_iter", dest="max_iter", type=int, default=100)
    parser.add_argument(
        "--batch-size", "--batch_size", dest="batch_size", type=int, default=10_000, help="scikit-learn mini-batch size"
    )
    parser.add_argument("--n-init", "--n_init", dest="n_init", type=int, default=20)
    parser.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "faiss", "sklearn"),
        help="auto: faiss when installed, else scikit-learn MiniBatchKMeans",
    )
    parser.add_argument("--device", default=None, help="device for feature extraction (default: cuda if available)")
    parser.add_argument("--extension", default=",".join(AUDIO_EXTENSIONS), help="audio extensions searched in folders")
    parser.add_argument("--skip-bad", action="store_true", help="report unreadable files and go on")
    parser.add_argument("--no-sklearn-pickle", action="store_true", help="do not write the scikit-learn pickle")


def run(args: argparse.Namespace) -> int:
    from dgslm.device import pick_device
    from dgslm.encoder.features import build_feature_reader
    from dgslm.encoder.inputs import find_audio
    from dgslm.encoder.kmeans import convert, save_centers, save_sklearn_pickle
    from dgslm.encoder.kmeans_fit import KMeansFitConfig, collect_features, fit_kmeans, sample_items
    from dgslm.errors import DgslmError

    if args.output.suffix not in (".safetensors", ".npy"):
        raise DgslmError("the centroid file must end in .safetensors or .npy", args.output)
    if args.convert is not None:
        convert(args.convert, args.output)
        logger.info("wrote %s", args.output)
        return 0
    if not args.inputs:
        raise DgslmError("no inputs: give audio files, folders or manifests (or --convert PICKLE)")
    if args.n_clusters < 1:
        raise DgslmError("--n-clusters must be >= 1")
    items = sample_items(find_audio(args.inputs, args.extension.split(",")), args.percent, args.seed)
    try:
        reader = build_feature_reader(args.feature_type, args.hubert, args.layer, pick_device(args.device))
    except ValueError as err:
        raise DgslmError(str(err)) from None
    feats = collect_features(reader, items, args.skip_bad)
    cfg = KMeansFitConfig(
        n_clusters=args.n_clusters,
        seed=args.seed,
        max_iter=args.max_iter,
        batch_size=args.batch_size,
        n_init=args.n_init,
        backend=args.backend,
    )
    centers = fit_kmeans(feats, cfg)
    save_centers(args.output, centers)
    logger.info(
        "wrote %s (%d clusters x %d dims, from %d frames of %d files)",
        args.output,
        *centers.shape,
        len(feats),
        len(items),
    )
    if not args.no_sklearn_pickle:
        pickle_path = args.output.with_suffix(".bin")
        save_sklearn_pickle(pickle_path, centers)
        logger.info("wrote %s (scikit-learn MiniBatchKMeans for the original tools)", pickle_path)
    return 0
