#!/usr/bin/env bash
# Turn-taking check of the demo (issue 8, part 4), after recipes/build_demo.sh WORK_DIR:
#
#   1. train the ablation: the same SpeechDLM with --decoder-cross-layers 0 (no cross-channel
#      attention), same data, seed and updates, into WORK_DIR/speechdlm_nocross;
#   2. recipes/evaluate_demo.py: continue held-out (test split) prompts with both models,
#      vocode them and the true continuations with the demo vocoder, `dgslm evaluate` all of
#      them, `dgslm validate` both models; WORK_DIR/turn_taking/results.{md,json}, docs/demo_timeline.png;
#   3. recipes/silence_hazard.py: how each model's chance of speaking next depends on how long
#      its channel (and both channels) have been silent, against the corpus (test split).
#
# The size variables of build_demo.sh apply (use the same ones). Extra arguments go to
# evaluate_demo.py, e.g. --prompt-seconds 4 --seconds 6 --max-prompts 50.
#
# Usage: recipes/evaluate_demo.sh [WORK_DIR] [evaluate_demo.py options]
set -euo pipefail

WORK=${1:-demo-build}
shift || true
HERE=$(dirname "$0")

STEPS=train LM_CROSS_LAYERS=0 LM_DIR=$WORK/speechdlm_nocross "$HERE/build_demo.sh" "$WORK"

best() { if [[ -f $1/checkpoint_best.pt ]]; then echo "$1/checkpoint_best.pt"; else echo "$1/checkpoint_last.pt"; fi; }
GENERATOR=$(ls "$WORK"/vocoder/g_* | sort | tail -n 1)
python "$HERE/evaluate_demo.py" "$WORK" --model "full=$(best "$WORK/speechdlm")" \
    --model "no-cross=$(best "$WORK/speechdlm_nocross")" --vocoder "$GENERATOR" \
    --timeline "$HERE/../docs/demo_timeline.png" "$@"
python "$HERE/silence_hazard.py" "$WORK" --model "full=$(best "$WORK/speechdlm")" \
    --model "no-cross=$(best "$WORK/speechdlm_nocross")"
