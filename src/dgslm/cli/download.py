"""``dgslm download``: fetch the released dGSLM model files (HuBERT + k-means, SpeechDLM,
unit HiFi-GAN) into the cache, ``$DGSLM_HOME`` or ``~/.cache/dgslm``.

Downloads resume where they stopped and are checked against the sizes and SHA-256 sums
recorded in the cache's ``manifest.json``. Without a connection, the error message lists the
URLs to fetch by hand and where to save each file.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dest", help="cache folder (default: $DGSLM_HOME or ~/.cache/dgslm)")
    parser.add_argument("--models", default="hubert,speech_dlm,hifigan", help="comma-separated models to fetch")
    parser.add_argument("--base-url", help="a mirror of the release folder (default: the original's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from dgslm.models.released import BASE_URL, download_models

    found = download_models(
        args.dest, [m for m in args.models.split(",") if m], args.base_url or BASE_URL, progress=not args.no_progress
    )
    for model, paths in found.items():
        print(f"{model}: {', '.join(str(p) for p in paths.values())}")
    return 0
