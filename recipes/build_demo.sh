#!/usr/bin/env bash
# Rebuild the bundled demo (src/dgslm/assets/demo/) from scratch with dgslm commands only:
#
#   corpus      dgslm synth-corpus   synthetic two-speaker telephone dialogues (espeak-ng)
#   kmeans      dgslm kmeans         log-mel k-means unit quantiser (no pretrained HuBERT)
#   encode      dgslm encode         every split -> code file + per-channel unit files
#   preprocess  dgslm preprocess     per-channel unit files -> binarised SpeechDLM dataset
#   train       dgslm train          a small SpeechDLM (edge units + delayed durations, cross heads)
#   vocoder     dgslm train-vocoder  a small unit HiFi-GAN on the same units and audio
#   bundle      make_bundle.py       both models -> safetensors folders (dgslm convert), k-means, bundle.json;
#                                    the vocoder's output stage (silence gate, gain) set on the valid split
#   heldout     synth-corpus, encode new dialogues for the turn-taking check: heldout (seed SEED+1,
#                                    HELDOUT_HOURS) to report on, tuning (seed SEED+2, TUNING_HOURS) to
#                                    choose decoding settings on; not a default step (evaluate_demo.sh runs it)
#
# Defaults are the full-size run, under 2 hours on a dedicated 2-core machine. Rates measured on
# one: corpus ~5 min, k-means + encode + preprocess 25 s, then the SpeechDLM (1.9 s per update)
# and the vocoder (0.75 s per step) side by side, one thread each: ~95 min for 3000 updates
# (the vocoder's 4000 steps end first). DEVICE=cuda trains both in minutes. Every size is an
# environment variable; smoke run:
#   HOURS=0.2 LM_UPDATES=20 LM_SAVE_EVERY=10 VOC_STEPS=20 VOC_SAVE_EVERY=10 recipes/build_demo.sh /tmp/demo-smoke
# Steps whose output exists are skipped (the trainers resume from their last checkpoint), and
# STEPS selects steps, e.g.  STEPS="corpus kmeans encode preprocess" recipes/build_demo.sh DIR.
# Same SEED -> same corpus bytes, same units, same initialisation and batch order.
# Needs espeak-ng (apt-get install espeak-ng) and faiss (pip install '.[faiss]').
# recipes/evaluate_demo.sh measures turn-taking.
#
# Usage: recipes/build_demo.sh [WORK_DIR]     (default: demo-build)
set -euo pipefail

WORK=${1:-demo-build}
STEPS=${STEPS:-corpus kmeans encode preprocess train vocoder bundle}
SEED=${SEED:-0}
HOURS=${HOURS:-3}                 # hours of synthetic dialogue
WORKERS=${WORKERS:-2}             # synthesis processes / preprocess workers
THREADS=${THREADS:-1}             # torch threads per trainer (the two trainers run side by side)
UNITS=${UNITS:-100}               # k-means clusters = unit vocabulary
KM_PERCENT=${KM_PERCENT:-0.15}    # share of the training dialogues the k-means sees (~150k frames)
MIN_SILENCE=${MIN_SILENCE:-5}     # encode: silences < 5 frames (100 ms) inside speech are bridged
MIN_SPEECH=${MIN_SPEECH:-3}       # encode: speech bursts < 3 frames (60 ms) between silences are dropped
DEVICE=${DEVICE:-}                # empty: cuda if available, else cpu
HELDOUT_HOURS=${HELDOUT_HOURS:-2} # heldout step: hours of new dialogues (the test split is ~9 min)
TUNING_HOURS=${TUNING_HOURS:-1}   # heldout step: hours of new dialogues for tuning (the valid split is ~9 min)
# SpeechDLM: 3 layers, the last 2 cross-channel, 192 wide (~1.6 M parameters)
LM_DIR=${LM_DIR:-$WORK/speechdlm}
LM_LAYERS=${LM_LAYERS:-3}
LM_CROSS_LAYERS=${LM_CROSS_LAYERS:-2}   # 0 = the no-cross-attention ablation
LM_DIM=${LM_DIM:-192}
LM_FFN=${LM_FFN:-768}
LM_HEADS=${LM_HEADS:-4}
LM_TOKENS_PER_SAMPLE=${LM_TOKENS_PER_SAMPLE:-512}   # 10.24 s of dialogue at 50 units/s
LM_MAX_POSITIONS=${LM_MAX_POSITIONS:-1024}          # generate: prompt + continuation <= 20.5 s
LM_MAX_TOKENS=${LM_MAX_TOKENS:-2048}                # 4 samples per batch
LM_UPDATES=${LM_UPDATES:-3000}
LM_LR=${LM_LR:-1e-3}
# next: frame-level next-unit prediction (default). edge: the released dGSLM objective (edge units
# + delayed L1 durations); its duration head regresses the median run length, so on this corpus
# every generated silence lasts ~2 frames and the channels never fall silent (README, demo section)
LM_OBJECTIVE=${LM_OBJECTIVE:-next}
LM_WARMUP=${LM_WARMUP:-200}
LM_SAVE_EVERY=${LM_SAVE_EVERY:-250}
LM_FLAGS=${LM_FLAGS:-}            # more dgslm train flags, e.g. "--bf16" on a GPU
# vocoder: a narrow HiFi-GAN (128 initial channels) with slim discriminators
VOC_DIR=${VOC_DIR:-$WORK/vocoder}
VOC_STEPS=${VOC_STEPS:-4000}
VOC_BATCH=${VOC_BATCH:-4}
VOC_CHANNELS=${VOC_CHANNELS:-128}
VOC_DISC_SCALE=${VOC_DISC_SCALE:-0.125}
VOC_SAVE_EVERY=${VOC_SAVE_EVERY:-500}
VOC_INIT=${VOC_INIT:-}            # warm start: a generator (g_ file or converted folder) of the same shape
VOC_PEAK_NORMALIZE=${VOC_PEAK_NORMALIZE:-false}  # false: learn the corpus's own level (true: speech-resynthesis)

CORPUS=$WORK/corpus
UNIT_DIR=$WORK/units
DATA=$WORK/data-bin
KM=$WORK/kmeans_logmel_$UNITS.safetensors
BUNDLE=${BUNDLE:-$WORK/bundle}
DEVICE_FLAG=()
[[ -n $DEVICE ]] && DEVICE_FLAG=(--device "$DEVICE")
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS

mkdir -p "$WORK" "$UNIT_DIR"
step() { echo "== $(date +%H:%M:%S) $*" >&2; }
wanted() { [[ " $STEPS " == *" $1 "* ]]; }

# corpus: wav/, timing/, manifest.tsv, train/valid/test.tsv, corpus.json
synth() {  # folder, hours, seed
    step "synth-corpus: $2 h, seed $3 -> $1"
    dgslm synth-corpus --out "$1" --hours "$2" --seed "$3" --workers "$WORKERS" \
        --min-dialogue-seconds 30 --max-dialogue-seconds 90
}
if wanted corpus && [[ ! -f $CORPUS/corpus.json ]]; then
    synth "$CORPUS" "$HOURS" "$SEED"
fi

# kmeans: 80 log-mel energies per 20 ms frame -> UNITS clusters. faiss's result depends on its
# thread count, so it is pinned (2 threads made the shipped bundle)
if wanted kmeans && [[ ! -f $KM ]]; then
    step "kmeans: $UNITS log-mel units"
    OMP_NUM_THREADS=2 dgslm kmeans "$CORPUS/train.tsv" -o "$KM" --feature-type logmel --n-clusters "$UNITS" \
        --percent "$KM_PERCENT" --n-init 1 --seed "$SEED" --backend faiss --no-sklearn-pickle "${DEVICE_FLAG[@]}"
fi

# encode: $UNIT_DIR/{split}.code ('audio' = dialogue name without .wav, unitA, unitB) and
# $UNIT_DIR/{split}.unitA / .unitB (units only, one dialogue per line)
encode() {  # manifest, split name
    step "encode: $2"
    dgslm encode --manifest-path "$1" -o "$UNIT_DIR/$2.code" --km "$KM" \
        --feature-type logmel --min-silence-frames "$MIN_SILENCE" --min-speech-frames "$MIN_SPEECH" \
        --per-channel-dir "$UNIT_DIR" --hide-fname "${DEVICE_FLAG[@]}"
}
if wanted encode; then
    for split in train valid test; do
        [[ -f $UNIT_DIR/$split.code ]] || encode "$CORPUS/$split.tsv" "$split"
    done
fi

# preprocess: dict.unitA.txt, dict.unitB.txt, {split}.unit{A,B}.{bin,idx}
if wanted preprocess && [[ ! -f $DATA/dict.unitA.txt ]]; then
    step "preprocess"
    dgslm preprocess --channels unitA,unitB --trainpref "$UNIT_DIR/train" --validpref "$UNIT_DIR/valid" \
        --testpref "$UNIT_DIR/test" --destdir "$DATA" --workers "$WORKERS"
fi

# train: a SpeechDLM with main and cross heads, on the LM_OBJECTIVE targets
case $LM_OBJECTIVE in
    next) OBJECTIVE_FLAGS=(--next-unit-prediction True --edge-unit-prediction False --duration-prediction False
                           --general-unit-loss-weight 1 --edge-unit-loss-weight 0 --duration-loss-weight 0) ;;
    edge) OBJECTIVE_FLAGS=(--next-unit-prediction False --edge-unit-prediction True --duration-prediction True
                           --delayed-duration-target True --general-unit-loss-weight 0 --edge-unit-loss-weight 1
                           --duration-loss-weight 1) ;;
    *) echo "LM_OBJECTIVE must be next or edge, not '$LM_OBJECTIVE'" >&2; exit 2 ;;
esac
train_lm() {
    step "train: SpeechDLM ${LM_LAYERS}x$LM_DIM (cross layers $LM_CROSS_LAYERS), $LM_UPDATES updates -> $LM_DIR"
    dgslm train "$DATA" --save-dir "$LM_DIR" --tensorboard-logdir "$LM_DIR/tensorboard" \
        --channels unitA,unitB --arch speech_dlm \
        --decoder-layers "$LM_LAYERS" --decoder-cross-layers "$LM_CROSS_LAYERS" \
        --decoder-embed-dim "$LM_DIM" --decoder-ffn-embed-dim "$LM_FFN" --decoder-attention-heads "$LM_HEADS" \
        --max-target-positions "$LM_MAX_POSITIONS" \
        --share-decoder-input-output-embed --dropout 0.1 --attention-dropout 0.1 \
        "${OBJECTIVE_FLAGS[@]}" --main-and-cross-weights 1,0.5 \
        --tokens-per-sample "$LM_TOKENS_PER_SAMPLE" --sample-break-mode none \
        --max-tokens "$LM_MAX_TOKENS" --max-target-durations 256 \
        --optimizer adam --adam-betas 0.9,0.98 --clip-norm 1.0 --weight-decay 0.01 \
        --lr "$LM_LR" --lr-scheduler inverse_sqrt --warmup-updates "$LM_WARMUP" --warmup-init-lr 1e-7 \
        --max-update "$LM_UPDATES" --save-interval-updates "$LM_SAVE_EVERY" --keep-interval-updates 1 \
        --validate-interval-updates "$LM_SAVE_EVERY" --no-epoch-checkpoints --log-interval 25 \
        --num-workers 0 --seed "$SEED" "${DEVICE_FLAG[@]}" $LM_FLAGS
    touch "$LM_DIR/.done"
}

# vocoder: unit HiFi-GAN on both channels of the training dialogues (single speaker);
# 5*4*4*2*2 = 320 samples = one 20 ms unit
train_vocoder() {
    mkdir -p "$VOC_DIR"
    VOC_CFG=$WORK/vocoder_config.json
    cat > "$VOC_CFG" <<EOF
{
    "num_embeddings": $UNITS,
    "embedding_dim": 128,
    "upsample_initial_channel": $VOC_CHANNELS,
    "upsample_rates": [5, 4, 4, 2, 2],
    "upsample_kernel_sizes": [11, 8, 8, 4, 4],
    "resblock": "1",
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "sampling_rate": 16000,
    "segment_size": 8960,
    "num_mels": 80,
    "n_fft": 1024,
    "hop_size": 256,
    "win_size": 1024,
    "fmin": 0,
    "fmax": 8000,
    "fmax_for_loss": null,
    "learning_rate": 0.0002,
    "adam_b1": 0.8,
    "adam_b2": 0.99,
    "lr_decay": 0.999,
    "peak_normalize": $VOC_PEAK_NORMALIZE,
    "seed": $SEED
}
EOF
    INIT_FLAG=()
    [[ -n $VOC_INIT ]] && INIT_FLAG=(--init-generator "$VOC_INIT")
    step "train-vocoder: $VOC_STEPS steps -> $VOC_DIR"
    # the code file's 'audio' entries are dialogue names; the dataset finds <audio-root>/<name>.wav
    dgslm train-vocoder --in-file "$UNIT_DIR/train.code" --audio-root "$CORPUS/wav" --config "$VOC_CFG" \
        --save-dir "$VOC_DIR" --max-steps "$VOC_STEPS" --batch-size "$VOC_BATCH" \
        --save-interval "$VOC_SAVE_EVERY" --keep-last 2 --log-interval 50 --summary-interval "$VOC_SAVE_EVERY" \
        --disc-scale "$VOC_DISC_SCALE" --seed "$SEED" "${INIT_FLAG[@]}" "${DEVICE_FLAG[@]}"
    touch "$VOC_DIR/.done"
}

lm=0 voc=0
wanted train && [[ ! -f $LM_DIR/.done ]] && lm=1
wanted vocoder && [[ ! -f $VOC_DIR/.done ]] && voc=1
if ((lm && voc)); then  # side by side, one thread each
    train_lm & lm_pid=$!
    train_vocoder
    wait $lm_pid
elif ((lm)); then
    train_lm
elif ((voc)); then
    train_vocoder
fi

# bundle: speech_dlm/ and hifigan/ (dgslm convert), units/ (log-mel k-means), bundle.json, README.txt
if wanted bundle; then
    step "bundle: $BUNDLE"
    LM_CKPT=$LM_DIR/checkpoint_best.pt
    [[ -f $LM_CKPT ]] || LM_CKPT=$LM_DIR/checkpoint_last.pt
    GENERATOR=$(ls "$VOC_DIR"/g_* | sort | tail -n 1)
    python "$(dirname "$0")/make_bundle.py" --speech-dlm "$LM_CKPT" --speech-dlm-data "$DATA" \
        --vocoder "$GENERATOR" --vocoder-cfg "$VOC_DIR/config.json" --km "$KM" \
        --corpus "$CORPUS/corpus.json" --min-silence-frames "$MIN_SILENCE" --min-speech-frames "$MIN_SPEECH" \
        --calibrate "$CORPUS/valid.tsv" --out "$BUNDLE"
    step "done: $BUNDLE (copy it to src/dgslm/assets/demo/ to ship it)"
fi

# heldout: $WORK/heldout and $WORK/tuning, new dialogues from seeds SEED+1 and SEED+2 (the same
# voices and turn-taking distributions, none of the training dialogues), and their code files
# $UNIT_DIR/heldout.code and $UNIT_DIR/tuning.code, all their dialogues
if wanted heldout; then
    for set in "heldout 1 $HELDOUT_HOURS" "tuning 2 $TUNING_HOURS"; do
        read -r name offset hours <<< "$set"
        [[ -f $UNIT_DIR/$name.code ]] && continue
        [[ -f $WORK/$name/corpus.json ]] || synth "$WORK/$name" "$hours" $((SEED + offset))
        encode "$WORK/$name/manifest.tsv" "$name"
    done
fi
