r"""Assemble the demo bundle from a trained SpeechDLM, a trained unit vocoder and the log-mel k-means.

Layout (what ``dgslm generate`` reads from ``dgslm/assets/demo/`` when no other model is found):

- ``hubert/``: the unit extractor. No HuBERT: ``config.json`` is
  ``{"format": "dgslm.features", "feature_type": "logmel", ...}`` and ``kmeans.safetensors``
  holds the k-means centres over 80 log-mel energies per 20 ms frame;
- ``speech_dlm/``: ``model.safetensors``, ``config.json``, ``dict.txt`` (``dgslm convert``);
- ``hifigan/``: ``model.safetensors`` and ``config.json`` (``dgslm convert``); with
  ``--calibrate MANIFEST`` its config also names the silence unit (decoded to digital silence)
  and the output gain that brings resynthesised speech to the level of the manifest's dialogues
  (``dgslm.vocoder.output_stage``);
- ``bundle.json``: what the bundle is, its feature type and files, and how it was made;
- ``README.txt``: the same in words.

    python recipes/make_bundle.py --speech-dlm LM.pt --speech-dlm-data DATA --vocoder g_N \
        --vocoder-cfg config.json --km kmeans.safetensors --corpus corpus.json --out BUNDLE \
        [--calibrate valid.tsv]
    python recipes/make_bundle.py --vocoder-only --vocoder g_N --vocoder-cfg config.json \
        --calibrate valid.tsv --out BUNDLE          # a new vocoder in an existing bundle
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from dgslm.cli.options import read_stereo
from dgslm.encoder.features import FLOOR_DB
from dgslm.encoder.inputs import read_manifest
from dgslm.encoder.kmeans import load_centers, save_centers
from dgslm.evaluation.resynthesis import score_resynthesis
from dgslm.fileio import atomic_folder, atomic_write
from dgslm.model_folder import CONFIG, FEATURES_FORMAT, KMEANS
from dgslm.models.convert import convert_speech_dlm, convert_vocoder
from dgslm.models.resolve import resolve_model_paths
from dgslm.pipeline.dialogue import DialoguePipeline
from dgslm.training.checkpointing import load_state

README = """\
dGSLM DEMO MODELS - trained on synthetic espeak-ng speech, NOT a real dialogue model.

These small models (a {layers}-layer, {dim}-wide SpeechDLM and a narrow unit HiFi-GAN) were
trained with recipes/build_demo.sh on {hours:g} h of synthetic two-speaker telephone dialogues
made by `dgslm synth-corpus` (robotic espeak-ng voices, a small sentence grammar, turn-taking
drawn from simple documented distributions). Units are k-means clusters ({units}) of 80 log-mel
energies per 20 ms frame, floored {floor_db:g} dB under a full-scale tone so that silence is one
unit, with silences under {min_silence} frames inside speech bridged and speech bursts under
{min_speech} frames dropped (`dgslm encode --min-silence-frames/--min-speech-frames`); they are
not HuBERT units and not compatible with the released dGSLM (Fisher) models.
The SpeechDLM predicts {objective}.
It was trained on blocks of {block} units ({block_seconds:g} s); for longer outputs add
`--context-window {block}`, e.g. `dgslm generate prompt.wav -o out.wav --seconds 30 --context-window {block}`.

They exist so that `dgslm generate prompt.wav -o out.wav` runs offline on a fresh machine and
so that the whole recipe (units, dialogue LM, vocoder, evaluation) is exercised end to end.
Expect robotic babble without words, with two-channel speech/silence activity that imitates
the synthetic corpus's turn-taking (how closely, against a no-cross-attention ablation: the
README's demo section). On real speech prompts the output is meaningless. For the real
models run `dgslm download` (or give --hubert/--km, --speech-dlm, --vocoder).

Rebuild: recipes/build_demo.sh (seed {seed}); turn-taking check: recipes/evaluate_demo.sh.
"""


def write_unit_folder(folder: Path, km: Path, min_silence: int, min_speech: int) -> None:
    """The log-mel unit extractor: its k-means centres, feature description and silence smoothing."""
    centers = load_centers(km)
    with atomic_folder(folder) as tmp:
        save_centers(tmp / KMEANS, centers)
        meta = {"format": FEATURES_FORMAT, "version": 1, "feature_type": "logmel", "n_mels": int(centers.shape[1]),
                "floor_db": FLOOR_DB, "n_clusters": int(centers.shape[0]), "layer": None,
                "min_silence_frames": min_silence, "min_speech_frames": min_speech}  # fmt: skip
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2) + "\n")


def bundle_pipeline(bundle: Path) -> DialoguePipeline:
    """The bundle's models, as `dgslm resynthesize` loads them."""
    paths = resolve_model_paths(cache=bundle / "no-cache", demo=bundle)
    return DialoguePipeline.from_pretrained(paths, "cpu")


def calibrate_output(bundle: Path, manifest: Path, fade_ms: float) -> dict:
    """Write the vocoder's output stage into ``bundle/hifigan/config.json``: the silence unit of
    the bundle's units gated (``fade_ms`` fades), and the output gain (0.1 dB steps) that makes the
    mean resynthesis loudness difference over ``manifest``'s dialogues zero. Returns the keys."""
    config_path = bundle / "hifigan" / CONFIG
    config = json.loads(config_path.read_text())
    pipe = bundle_pipeline(bundle)
    config.update(silence_unit=pipe.encoder.silence_unit(), silence_fade_ms=fade_ms, output_gain_db=0.0)
    with atomic_write(config_path) as handle:
        json.dump(config, handle, indent=4)
    pipe = bundle_pipeline(bundle)  # with the gate: the speech level is measured as it will be heard
    differences = []
    for item in read_manifest(manifest):
        wave = read_stereo(str(item.path), None, False)
        differences.append(score_resynthesis(wave, pipe.resynthesize(wave, path=item.path).audio).loudness_db)
    config["output_gain_db"] = round(-float(np.mean(differences)), 1)
    with atomic_write(config_path) as handle:
        json.dump(config, handle, indent=4)
    return {k: config[k] for k in ("silence_unit", "silence_fade_ms", "output_gain_db")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speech-dlm", type=Path, help="trained SpeechDLM checkpoint (.pt)")
    parser.add_argument("--speech-dlm-data", type=Path, help="folder of its dict.<channel>.txt")
    parser.add_argument("--vocoder", type=Path, required=True, help="trained generator checkpoint (g_NNNNNNNN)")
    parser.add_argument("--vocoder-cfg", type=Path, required=True, help="the vocoder's config.json")
    parser.add_argument("--km", type=Path, help="log-mel k-means centres (.safetensors)")
    parser.add_argument("--corpus", type=Path, help="corpus.json of the training corpus")
    parser.add_argument("--min-silence-frames", type=int, default=0, help="the units' silence smoothing (dgslm encode)")
    parser.add_argument("--min-speech-frames", type=int, default=0, help="the units' silence smoothing (dgslm encode)")
    parser.add_argument("--out", type=Path, required=True, help="bundle folder to (re)write")
    parser.add_argument("--calibrate", type=Path, help="manifest of dialogues to set the vocoder's output stage on")
    parser.add_argument("--silence-fade-ms", type=float, default=20.0, help="silence gate fades (with --calibrate)")
    parser.add_argument(
        "--vocoder-only",
        action="store_true",
        help="replace only the vocoder (and its output stage) of the bundle --out",
    )
    args = parser.parse_args()
    if args.vocoder_only:
        replace_vocoder(args)
        return
    missing = [f for f in ("speech_dlm", "speech_dlm_data", "km", "corpus") if getattr(args, f) is None]
    if missing:
        parser.error("the following arguments are required: " + ", ".join("--" + f.replace("_", "-") for f in missing))

    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    write_unit_folder(args.out / "hubert", args.km, args.min_silence_frames, args.min_speech_frames)
    convert_speech_dlm(args.speech_dlm, args.speech_dlm_data, args.out / "speech_dlm")
    convert_vocoder(args.vocoder, args.vocoder_cfg, args.out / "hifigan")
    output_stage = {}
    if args.calibrate:
        output_stage = calibrate_output(args.out, args.calibrate, args.silence_fade_ms)
        print(f"vocoder output stage: {output_stage}")

    lm_cfg = json.loads((args.out / "speech_dlm" / "config.json").read_text())["config"]
    block = int(load_state(args.speech_dlm)["cfg"]["task"]["tokens_per_sample"])
    corpus = json.loads(args.corpus.read_text())
    corpus_cfg = corpus.get("config", corpus)
    units = len(load_centers(args.km))
    objective = ("the next frame's unit in each channel (next-unit prediction)" if lm_cfg.get("next_unit_prediction")
                 else "edge units and their delayed durations (the released dGSLM objective)")  # fmt: skip
    info = {
        "format": "dgslm.demo_bundle",
        "version": 1,
        "demo": True,
        "description": "demo trained on synthetic espeak-ng speech, not a real dialogue model",
        "feature_type": "logmel",
        "layer": None,
        "units": units,
        "tokens_per_sample": block,
        "models": {"hubert": "hubert", "speech_dlm": "speech_dlm", "hifigan": "hifigan"},
        "corpus": corpus_cfg,
        "sources": {"speech_dlm": args.speech_dlm.name, "vocoder": args.vocoder.name},
        "vocoder_output_stage": output_stage,
    }
    (args.out / "bundle.json").write_text(json.dumps(info, indent=2) + "\n")
    (args.out / "README.txt").write_text(README.format(
        layers=lm_cfg["layers"], dim=lm_cfg["embed_dim"], hours=float(corpus_cfg.get("hours", 0)),
        units=units, seed=corpus_cfg.get("seed", "?"), floor_db=FLOOR_DB, objective=objective,
        min_silence=args.min_silence_frames, min_speech=args.min_speech_frames,
        block=block, block_seconds=block / 50,
    ))  # fmt: skip
    print_size(args.out)


def print_size(bundle: Path) -> None:
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    print(f"{bundle}: {size / 1e6:.1f} MB")


def replace_vocoder(args: argparse.Namespace) -> None:
    """``--vocoder-only``: a new vocoder (converted, output stage calibrated if asked) in an
    existing bundle, its entries in ``bundle.json`` updated."""
    info_path = args.out / "bundle.json"
    info = json.loads(info_path.read_text())
    convert_vocoder(args.vocoder, args.vocoder_cfg, args.out / "hifigan")
    info["vocoder_output_stage"] = (
        calibrate_output(args.out, args.calibrate, args.silence_fade_ms) if args.calibrate else {}
    )
    info["sources"]["vocoder"] = args.vocoder.name
    print(f"vocoder output stage: {info['vocoder_output_stage']}")
    with atomic_write(info_path) as handle:
        handle.write(json.dumps(info, indent=2) + "\n")
    print_size(args.out)


if __name__ == "__main__":
    main()
