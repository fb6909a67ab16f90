"""``dgslm convert``: the original checkpoints -> our safetensors folders (safe, fast to load).

    dgslm convert --speech-dlm CKPT [--speech-dlm-data DIR] --hubert PT --km BIN [--layer 12] \
                  --vocoder PATH [--vocoder-cfg CFG] [--out DIR]

Any subset of the three models; without model flags, the originals found in the cache (from
``dgslm download``) are converted. Output: ``DIR/hubert/``, ``DIR/speech_dlm/``, ``DIR/hifigan/``
(layout in :mod:`dgslm.models.convert`); ``DIR`` defaults to ``$DGSLM_HOME/converted``,
where ``dgslm generate`` looks first. The folders are accepted by the ``dgslm generate`` flags
(``--hubert DIR/hubert --speech-dlm DIR/speech_dlm --vocoder DIR/hifigan``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--speech-dlm", help="original SpeechDLM checkpoint (.pt)")
    parser.add_argument("--speech-dlm-data", help="folder of its dict.<channel>.txt files (default: the checkpoint's)")
    parser.add_argument("--hubert", help="original HuBERT checkpoint (.pt)")
    parser.add_argument("--km", help="k-means file of the units (original pickle, .safetensors or .npy)")
    parser.add_argument("--layer", type=int, help="HuBERT layer the k-means was learned on (default 12)")
    parser.add_argument("--vocoder", help="original unit HiFi-GAN checkpoint")
    parser.add_argument("--vocoder-cfg", help="its config.json (default: the one beside it)")
    parser.add_argument("--out", type=Path, help="output folder (default: $DGSLM_HOME/converted)")


def run(args: argparse.Namespace) -> int:
    from dgslm.errors import DgslmError
    from dgslm.model_folder import DEFAULT_LAYER
    from dgslm.models.released import cache_dir, find_model_files
    from dgslm.models.resolve import CONVERTED, MARKERS, from_download, from_flags, missing_message

    flags = vars(args)
    if any(flags[k] for k in ("hubert", "km", "speech_dlm", "speech_dlm_data", "vocoder", "vocoder_cfg")):
        models = {m: paths for m in MARKERS if (paths := from_flags(m, flags))}
    else:  # the originals downloaded into the cache
        models = {m: from_download(m, files) for m, files in find_model_files().items() if files}
        if not models:
            raise DgslmError(missing_message(list(MARKERS), cache_dir()))
    for model, paths in models.items():
        main_file = paths[{"hubert": "hubert", "speech_dlm": "speech_dlm", "hifigan": "vocoder"}[model]]
        if main_file.is_dir():
            raise DgslmError("already a converted folder", main_file)
    out = args.out if args.out is not None else cache_dir() / CONVERTED

    from dgslm.models.convert import convert_hubert, convert_speech_dlm, convert_vocoder

    if "hubert" in models:
        hubert = models["hubert"]
        layer = args.layer or DEFAULT_LAYER
        print(convert_hubert(hubert["hubert"], hubert["kmeans"], layer, out / "hubert"))
    if "speech_dlm" in models:
        lm = models["speech_dlm"]
        print(convert_speech_dlm(lm["speech_dlm"], lm["speech_dlm_data"], out / "speech_dlm"))
    if "hifigan" in models:
        vocoder = models["hifigan"]
        print(convert_vocoder(vocoder["vocoder"], vocoder["vocoder_cfg"], out / "hifigan"))
    return 0
