"""Speed of the synthetic corpus: utterance synthesis and whole dialogues, per CPU second.

Baseline (same run): the ``espeak-ng`` program started once per utterance, writing a wav that
is read back (what a shell pipeline would do). Ours: ``dgslm.corpus.voices.synthesize``
(libespeak-ng loaded once per process). Then whole dialogues (``render_dialogue``: plan,
synthesis with the per-dialogue cache, mixing, telephone band and noise) without writing.
Speed = audio seconds / CPU seconds (higher is faster), children's CPU included.

    python benchmarks/synth_corpus.py [--utterances 40] [--dialogues 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile

import numpy as np
import soundfile as sf

from dgslm.corpus.sentences import TOPICS, sentence
from dgslm.corpus.synth import CorpusConfig, render_dialogue
from dgslm.corpus.voices import ESPEAK_VOICES, synthesize


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def espeak_program(voice, text: str, tmp: str) -> float:
    subprocess.run(["espeak-ng", "-v", voice.name, "-p", f"{voice.pitch:g}", "-s", f"{voice.speed:g}", "-w", tmp, text],
                   check=True)  # fmt: skip
    info = sf.info(tmp)
    return info.frames / info.samplerate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=40)
    parser.add_argument("--dialogues", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    jobs = [(ESPEAK_VOICES[i % len(ESPEAK_VOICES)], sentence(rng, sorted(TOPICS)[i % len(TOPICS)]))
            for i in range(args.utterances)]  # fmt: skip

    with tempfile.TemporaryDirectory() as folder:
        tmp = os.path.join(folder, "x.wav")
        began = cpu_seconds()
        audio = sum(espeak_program(v, t, tmp) for v, t in jobs)
        baseline = audio / (cpu_seconds() - began)
    synthesize(*jobs[0])  # load the library outside the timing
    began = cpu_seconds()
    audio = sum(len(synthesize(v, t)) / 16_000 for v, t in jobs)
    ours = audio / (cpu_seconds() - began)
    print(f"utterances: espeak-ng program {baseline:.0f}x real time per CPU s, "
          f"libespeak-ng {ours:.0f}x ({ours / baseline:.2f}x the baseline)")  # fmt: skip

    cfg = CorpusConfig(hours=1.0)
    began = cpu_seconds()
    audio = sum(render_dialogue(i, 60.0, cfg)[0].shape[0] / 16_000 for i in range(args.dialogues))
    print(f"dialogues: {audio / (cpu_seconds() - began):.0f}x real time per CPU s "
          f"({args.dialogues} x ~60 s, one process; --workers N runs N of these)")  # fmt: skip


if __name__ == "__main__":
    main()
