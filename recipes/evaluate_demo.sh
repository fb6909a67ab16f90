#!/usr/bin/env bash
# Turn-taking check of the demo (issue 8, part 4), after recipes/build_demo.sh WORK_DIR:
#
#   1. train the ablation: the same SpeechDLM with --decoder-cross-layers 0 (no cross-channel
#      attention), same data, seed and updates, into WORK_DIR/speechdlm_nocross;
#   2. build_demo.sh's heldout step: new dialogues encoded with the demo's k-means,
#      WORK_DIR/heldout (HELDOUT_HOURS, default 2, seed SEED+1) to report on and WORK_DIR/tuning
#      (TUNING_HOURS, default 1, seed SEED+2) to choose the temperature on; the corpus's own
#      valid and test splits (~9 min each) are too small to measure 15% differences;
#   3. choose the sampling temperature: the full model continues the tuning prompts at each of
#      TEMPERATURES (default "1.0 1.05 1.1"); the one with the smallest worst error wins
#      (WORK_DIR/tuning_T*/results.json);
#   4. recipes/evaluate_demo.py at that temperature: continue held-out prompts (4 s) with both
#      models, twice each, 6 s continuations tiling every held-out dialogue; vocode them and the
#      true continuations with the demo vocoder, `dgslm evaluate` all of them, `dgslm validate`
#      both models; WORK_DIR/turn_taking/results.{md,json}, docs/demo_timeline.png;
#   5. recipes/silence_hazard.py: how each model's chance of speaking next depends on how long
#      its channel (and both channels) have been silent, against the held-out corpus;
#   6. long continuations (LONG_SECONDS, default 30; 0 skips): 4 s prompts continued past the
#      training blocks with `dgslm sample --context-window LONG_WINDOW` (default
#      LM_TOKENS_PER_SAMPLE, 512), the temperature chosen again on the tuning dialogues among
#      LONG_TEMPERATURES (default "1.0 1.025 1.05", WORK_DIR/tuningLONG_SECONDS_T*), then both
#      models on the held-out ones (unit energy only: vocoding their 7.6 h takes ~45 min):
#      WORK_DIR/turn_taking_LONG_SECONDSs/results.{md,json}, docs/demo_timeline_LONG_SECONDSs.png.
#
# The size variables of build_demo.sh apply (use the same ones). Extra arguments go to every
# evaluate_demo.py run, e.g. --prompt-seconds 4 --seconds 6 --max-prompts 50.
#
# Usage: recipes/evaluate_demo.sh [WORK_DIR] [evaluate_demo.py options]
set -euo pipefail

WORK=${1:-demo-build}
shift || true
HERE=$(dirname "$0")
TEMPERATURES=${TEMPERATURES:-1.0 1.05 1.1}
LONG_SECONDS=${LONG_SECONDS:-30}
LONG_WINDOW=${LONG_WINDOW:-${LM_TOKENS_PER_SAMPLE:-512}}
LONG_TEMPERATURES=${LONG_TEMPERATURES:-1.0 1.025 1.05}

STEPS=train LM_CROSS_LAYERS=0 LM_DIR=$WORK/speechdlm_nocross "$HERE/build_demo.sh" "$WORK"
STEPS=heldout "$HERE/build_demo.sh" "$WORK"

best() { if [[ -f $1/checkpoint_best.pt ]]; then echo "$1/checkpoint_best.pt"; else echo "$1/checkpoint_last.pt"; fi; }
FULL=$(best "$WORK/speechdlm")
NOCROSS=$(best "$WORK/speechdlm_nocross")
GENERATOR=$(ls "$WORK"/vocoder/g_* | sort | tail -n 1)
EVALUATE=(python "$HERE/evaluate_demo.py" "$WORK" --max-prompts 0 --samples 2)

# tune PREFIX "T1 T2 ..." [evaluate_demo.py options]: the full model on the tuning dialogues at
# each temperature (PREFIX_T<t>/); prints the one with the smallest worst error
tune() {
    local prefix=$1 temperatures=$2
    shift 2
    for T in $temperatures; do
        "${EVALUATE[@]}" --split tuning --corpus "$WORK/tuning" --model "full=$FULL" --temperature "$T" \
            --out "${prefix}_T$T" "$@" >&2
    done
    python - "$prefix" $temperatures <<'PY'
import json, sys
worst = {t: max(json.load(open(f"{sys.argv[1]}_T{t}/results.json"))["errors_vs_corpus_units"]["full"].values())
         for t in sys.argv[2:]}
print(min(worst, key=worst.get))
PY
}

T=$(tune "$WORK/tuning" "$TEMPERATURES" "$@")
echo "temperature $T: the smallest worst error on the tuning dialogues" >&2

"${EVALUATE[@]}" --split heldout --corpus "$WORK/heldout" --model "full=$FULL" --model "no-cross=$NOCROSS" \
    --temperature "$T" --vocoder "$GENERATOR" --timeline "$HERE/../docs/demo_timeline.png" "$@"
python "$HERE/silence_hazard.py" "$WORK" --split heldout --model "full=$FULL" --model "no-cross=$NOCROSS"

if [[ $LONG_SECONDS != 0 ]]; then
    LONG=(--prompt-seconds 4 --seconds "$LONG_SECONDS" --context-window "$LONG_WINDOW")
    T=$(tune "$WORK/tuning$LONG_SECONDS" "$LONG_TEMPERATURES" "$@" "${LONG[@]}")
    echo "$LONG_SECONDS s continuations: temperature $T, the smallest worst error on the tuning dialogues" >&2
    "${EVALUATE[@]}" --split heldout --corpus "$WORK/heldout" --model "full=$FULL" --model "no-cross=$NOCROSS" \
        --temperature "$T" --out "$WORK/turn_taking_${LONG_SECONDS}s" \
        --timeline "$HERE/../docs/demo_timeline_${LONG_SECONDS}s.png" "$@" "${LONG[@]}"
fi
