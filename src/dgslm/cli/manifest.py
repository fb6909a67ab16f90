"""``dgslm manifest``: a wav2vec-style manifest of a folder's audio files, as the original
``wav2vec_manifest.py`` writes it (the input of ``dgslm encode --manifest_path``).

``--dest/train.tsv`` (and ``valid.tsv`` when ``--valid-percent`` > 0): the root folder on the
first line, then ``relative/path<TAB>frames`` for each file with extension ``--ext`` under the
root (recursive). Each file goes to valid when a ``random.Random(--seed)`` draw is at most
``--valid-percent``, as in the original; files are listed in sorted order (the original's
follows the file system's, which differs between machines).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

from dgslm.errors import DgslmError
from dgslm.fileio import atomic_write


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="root folder of the audio files (searched recursively)")
    parser.add_argument(
        "--valid-percent", type=float, default=0.01, help="fraction (0..1) of the files that go to valid.tsv"
    )
    parser.add_argument("--dest", default=".", help="output folder")
    parser.add_argument("--ext", default="flac", help="extension of the audio files")
    parser.add_argument("--seed", type=int, default=42, help="seed of the train/valid draw")
    parser.add_argument("--path-must-contain", default=None, help="keep only the files whose path contains this")


def run(args: argparse.Namespace) -> int:
    import random

    import soundfile

    root = Path(os.path.realpath(args.root))
    if not root.is_dir():
        raise DgslmError("no such folder", args.root)
    if not 0 <= args.valid_percent <= 1:
        raise DgslmError(f"--valid-percent must be in [0, 1], got {args.valid_percent}")
    files = sorted(p for p in root.rglob(f"*.{args.ext.lstrip('.')}") if p.is_file())
    rand = random.Random(args.seed)
    counts = {"train": 0, "valid": 0}
    dest = Path(args.dest)
    with contextlib.ExitStack() as stack:
        splits = ("train", "valid") if args.valid_percent > 0 else ("train",)
        handles = {split: stack.enter_context(atomic_write(dest / f"{split}.tsv")) for split in splits}
        for handle in handles.values():
            handle.write(f"{root}\n")
        for path in files:
            real = Path(os.path.realpath(path))
            if args.path_must_contain and args.path_must_contain not in str(real):
                continue
            try:
                frames = soundfile.info(str(path)).frames
            except (RuntimeError, soundfile.LibsndfileError) as err:
                raise DgslmError(f"cannot read audio: {err}", path) from None
            split = "train" if rand.random() > args.valid_percent else "valid"
            handles[split].write(f"{os.path.relpath(real, root)}\t{frames}\n")
            counts[split] += 1
    print(f"{counts['train']} files in {dest / 'train.tsv'}, {counts['valid']} in valid")
    return 0
