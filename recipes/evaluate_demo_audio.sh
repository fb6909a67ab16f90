#!/usr/bin/env bash
# Turn-taking of the demo as a user hears it (issue 20, part 3): `dgslm generate`'s defaults
# (dgslm.pipeline.defaults), vocoded, against the same dialogues resynthesised, on new dialogues.
#
#   1. two corpora of new dialogues (`dgslm synth-corpus`, seeds never used by build_demo.sh /
#      evaluate_demo.sh, which use 0, 1, 2): tuning (TUNING_HOURS, default 0.5, seed 4242) and
#      held-out (HELDOUT_HOURS, default 1, seed 5151), in WORK_DIR/{tuning,heldout}_corpus;
#   2. tuning: recipes/evaluate_demo_audio.py with each of SETTINGS (NAME="dgslm sample flags";
#      default: pure sampling at 1.0 and 1.025, the context window 512 = the demo's training
#      blocks) on the tuning dialogues -> WORK_DIR/tuning/<NAME>/results.md;
#   3. held-out: the same with the defaults of `dgslm generate` (set them from step 2 in
#      src/dgslm/pipeline/defaults.py) -> WORK_DIR/heldout/defaults/results.{md,json}, the table
#      of docs/demo-results.md.
#
# 4 s prompts continued 30 s (PROMPT_SECONDS, CONT_SECONDS), windows tiling each dialogue; energy VAD at
# ENERGY_DB (default -30, `dgslm evaluate`'s: the bundled vocoder decodes the silence unit to digital
# silence; -10 suited the earlier vocoder, whose pauses carried a hiss ~17 dB under its speech) and
# silero. Extra arguments go to every evaluate_demo_audio.py run (e.g. --max-windows 10 --seconds 6
# to try it quickly). On a free 2-core machine: ~2 min of corpora, then per setting on the tuning
# dialogues ~15 min, and ~30 min on the held-out ones (sampling 92 x 30 s, vocoding 2 x 46 min).
#
# Usage: recipes/evaluate_demo_audio.sh [WORK_DIR] [evaluate_demo_audio.py options]
set -euo pipefail

WORK=${1:-demo-audio}
shift || true
HERE=$(dirname "$0")
TUNING_HOURS=${TUNING_HOURS:-0.5}
HELDOUT_HOURS=${HELDOUT_HOURS:-1}
ENERGY_DB=${ENERGY_DB:--30}
PROMPT_SECONDS=${PROMPT_SECONDS:-4}
CONT_SECONDS=${CONT_SECONDS:-30}
SETTINGS=${SETTINGS:-"b1_T1.0=--beam-size 1 --temperature 1.0 --context-window 512;b1_T1.025=--beam-size 1 --temperature 1.025 --context-window 512"}
RUN=(python "$HERE/evaluate_demo_audio.py" --prompt-seconds "$PROMPT_SECONDS" --seconds "$CONT_SECONDS"
     --energy-threshold-db "$ENERGY_DB")

for set in "tuning $TUNING_HOURS 4242" "heldout $HELDOUT_HOURS 5151"; do
    read -r name hours seed <<< "$set"
    [[ -f $WORK/${name}_corpus/corpus.json ]] || dgslm synth-corpus --out "$WORK/${name}_corpus" --hours "$hours" \
        --seed "$seed" --workers 1 --min-dialogue-seconds 30 --max-dialogue-seconds 90
done

IFS=';' read -ra settings <<< "$SETTINGS"
for setting in "${settings[@]}"; do
    "${RUN[@]}" "$WORK/tuning_corpus" "$WORK/tuning" --setting "$setting" "$@"
done
"${RUN[@]}" "$WORK/heldout_corpus" "$WORK/heldout" "$@"
