"""How well does a model set reproduce speech? Encode + vocode dialogues (what `dgslm resynthesize`
does) and score each output against its input (dgslm.evaluation.resynthesis): loudness
difference, silence under speech and level-matched log-mel distance, per dialogue and the mean.

    python recipes/resynthesis_quality.py HELDOUT_CORPUS [--seconds 34] [--spectrogram docs/x.png]

HELDOUT_CORPUS is a `dgslm synth-corpus` folder (its wav/*.wav) or stereo wav files; use a seed
no model was trained on. The model files are found as `dgslm resynthesize` finds them (the
bundled demo by default; --vocoder/--vocoder-cfg etc. to try another).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import numpy as np

from dgslm.audio import SAMPLE_RATE
from dgslm.cli.options import add_synthesis_arguments, model_path_flags, read_stereo
from dgslm.evaluation.resynthesis import ResynthesisScores, score_resynthesis
from dgslm.fileio import atomic_path
from dgslm.pipeline.dialogue import DialoguePipeline

COLUMNS = {
    "loudness_db": "loudness",
    "silence_db": "silence",
    "input_silence_db": "(input)",
    "mel_db": "log-mel",
    "mel_speech_db": "(speech)",
    "mel_silence_db": "(silence)",
}


def input_files(paths: list[Path]) -> list[Path]:
    """Corpus folders (their wav/*.wav) and wav files, in order."""
    out = []
    for path in paths:
        out += sorted((path / "wav").glob("*.wav")) if path.is_dir() else [path]
    return out


def spectrogram_png(
    path: Path, reference: np.ndarray, output: np.ndarray, title: str, start: float = 0.0, max_hz: float = 4000
) -> None:
    """Input above resynthesis: linear-frequency spectrograms (dB, 64 ms windows, 0-``max_hz``),
    the time axis starting at ``start`` seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True, sharey=True)
    for ax, wave, name in zip(axes, (reference, output), ("input", "resynthesis"), strict=True):
        extent = (start, start + len(wave) / SAMPLE_RATE)
        ax.specgram(
            wave, NFFT=1024, Fs=SAMPLE_RATE, noverlap=1024 - 160, cmap="magma", vmin=-130, vmax=-30, xextent=extent
        )
        ax.set_ylim(0, max_hz)
        ax.set_facecolor("black")  # digital silence (log of 0)
        ax.set_ylabel("Hz")
        ax.set_title(f"{name}: {title}")
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=72)
    plt.close(fig)


def row(name: str, scores: ResynthesisScores) -> str:
    return f"{name:<28}" + "".join(f"{getattr(scores, k):>10.1f}" for k in COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=Path, help="synth-corpus folders or stereo wav files")
    parser.add_argument("--seconds", type=float, default=34.0, help="score the first SECONDS of each (default 34)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many dialogues")
    parser.add_argument("--spectrogram", type=Path, help="write input vs resynthesis of the first dialogue here")
    parser.add_argument("--spectrogram-seconds", type=float, nargs=2, default=(0.0, 5.0), metavar=("FROM", "TO"))
    add_synthesis_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    files = input_files(args.inputs)[: args.limit]
    pipe = DialoguePipeline.from_pretrained(None, args.device, (args.channel1_spk, args.channel2_spk),
                                            **model_path_flags(args))  # fmt: skip
    print(f"{'dialogue':<28}" + "".join(f"{c:>10}" for c in COLUMNS.values()) + "   (dB)")
    scores = []
    for i, path in enumerate(files):
        wave = read_stereo(str(path), args.seconds, False)
        output = pipe.resynthesize(wave, path=path).audio
        scores.append(score_resynthesis(wave, output))
        print(row(path.stem, scores[-1]), flush=True)
        if i == 0 and args.spectrogram:
            a, b = (int(s * SAMPLE_RATE) for s in args.spectrogram_seconds)
            title = f"{path.stem}, channel 1"
            spectrogram_png(args.spectrogram, wave[a:b, 0], output[a:b, 0], title, args.spectrogram_seconds[0])
    mean = ResynthesisScores(**{f.name: float(np.nanmean([getattr(s, f.name) for s in scores]))
                                for f in dataclasses.fields(ResynthesisScores)})  # fmt: skip
    print(row(f"mean of {len(scores)}", mean))


if __name__ == "__main__":
    main()
