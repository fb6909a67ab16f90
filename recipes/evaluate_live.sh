#!/usr/bin/env bash
# How well the live engine talks (docs/live-quality.md): held-out synthetic dialogues, channel A
# played into `dgslm.live.DuplexSession` as the person, the model on channel B; turn-taking
# statistics vs the corpus with bootstrap intervals and the Full-Duplex-Bench behavioural metrics
# (recipes/evaluate_live.py does the work; every dgslm command it runs is printed).
#
#   models   the bundled demo ("full"), and its deaf control (the same model hearing another
#            dialogue's person); with WORK, a recipes/build_demo.sh work folder that holds the
#            no-cross-attention ablation (recipes/evaluate_demo.sh trains it), "full" and
#            "no-cross" are WORK's two SpeechDLMs instead, on WORK's held-out corpus
#   sizes    HOURS of held-out dialogue to synthesise (default 0.2; ~1 min of CPU per minute of
#            dialogue and model on one core), MAX_DIALOGUES (0: all)
#
# Usage: [WORK=demo-build] [HOURS=0.2] recipes/evaluate_live.sh [OUT] [evaluate_live.py options]
set -euo pipefail

OUT=${1:-live-eval}
shift || true
HERE=$(dirname "$0")
HOURS=${HOURS:-0.2}
MAX_DIALOGUES=${MAX_DIALOGUES:-0}
ARGS=(--hours "$HOURS" --max-dialogues "$MAX_DIALOGUES" --deaf)

best() { if [[ -f $1/checkpoint_best.pt ]]; then echo "$1/checkpoint_best.pt"; else echo "$1/checkpoint_last.pt"; fi; }
if [[ -n ${WORK:-} ]]; then
    [[ -f $WORK/units/heldout.code ]] || STEPS=heldout "$HERE/build_demo.sh" "$WORK"
    ARGS+=(--corpus "$WORK/heldout" --units "$WORK/units/heldout.code" --data "$WORK/data-bin"
           --model "full=$(best "$WORK/speechdlm")")
    if [[ -d $WORK/speechdlm_nocross ]]; then
        ARGS+=(--model "no-cross=$(best "$WORK/speechdlm_nocross")")
    else
        echo "no $WORK/speechdlm_nocross: train the ablation with" \
             "STEPS=train LM_CROSS_LAYERS=0 LM_DIR=$WORK/speechdlm_nocross recipes/build_demo.sh $WORK" >&2
    fi
fi
python "$HERE/evaluate_live.py" "$OUT" "${ARGS[@]}" "$@"
