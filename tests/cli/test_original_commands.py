"""The original's command lines work as written: the README's training command builds the
released configuration, every flag of the original scripts keeps its name and default, and the
original READMEs' commands run one after the other with dgslm in place of each script."""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

import dgslm
from dgslm.units.codes import read_code_file

README = Path(__file__).resolve().parents[2] / "README.md"


def parser_of(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"dgslm {command}")
    importlib.import_module(f"dgslm.cli.{command}").add_arguments(parser)
    return parser


def readme_command(start: str) -> list[str]:
    """The README's shell command starting with ``start`` (backslash continuations joined)."""
    text = README.read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.strip().startswith(start))
    return shlex.split(line)


def test_readme_training_command_builds_the_released_configuration(reference, tmp_path):
    from dgslm.cli.train import build_configs
    from dgslm.lm.model import SpeechDLMModel

    argv = readme_command("dgslm train $BIN")[2:]
    argv = [
        str(reference / "speechdlm" / "data-bin") if a == "$BIN" else a.replace("$CKPT", str(tmp_path)) for a in argv
    ]
    train, model, task, criterion = build_configs(parser_of("train").parse_args(argv))
    assert (model.layers, model.cross_layers, model.embed_dim, model.ffn_dim, model.attention_heads) == (
        6,
        4,
        512,
        2048,
        8,
    )
    assert model.share_input_output_embed and (model.dropout, model.attention_dropout) == (0.1, 0.1)
    assert model.checkpoint_activations and model.max_positions == 6144 and model.vocab_size == 504
    assert model.channels == ("unitA", "unitB") and task.tokens_per_sample == 6144 and task.sample_break_mode == "none"
    assert model.targets == ("edge", "duration") and model.delayed_duration_target
    assert (train.lr, train.adam_betas, train.clip_norm, train.warmup_init_lr) == (5e-4, (0.9, 0.98), 1.0, 1e-7)
    assert (train.max_tokens, train.update_freq, train.max_update, train.warmup_updates) == (18432, 16, 250000, 20000)
    assert (train.save_interval_updates, train.keep_last_epochs, train.no_epoch_checkpoints) == (10000, 1, True)
    assert (train.log_interval, train.seed, train.fp16, train.num_workers) == (50, 100501, True, 4)
    assert train.skip_invalid_size_inputs_valid_test and train.save_dir == str(tmp_path)
    assert SpeechDLMModel(model).num_parameters() == 23_380_481


def test_readme_validate_command_parses():
    args = parser_of("validate").parse_args([a.strip("[]") for a in readme_command("dgslm validate $BIN")[2:]])
    assert args.max_tokens == 6144 and args.json and args.fairseq_compat


# the original sample_speech_dlm.py (spec 5.7)
SAMPLE_DEFAULTS = {
    "channels": "unitA,unitB", "prefix_size": None, "batch_max_tokens": 9216, "batch_max_positions": 6144,
    "batch_max_sentences": None, "skip_invalid_size_batch": False, "beam_search": False, "beam_size": 5,
    "sampling_topk": -1, "sampling_topp": -1.0, "max_len_a": 0, "max_len_b": 500, "min_len": 1,
    "temperature": 1.0, "dur_temperature": 1.0, "verbose": False, "seed": 123,
}  # fmt: skip
# the original generate_stereo_waveform.py (spec encoder_vocoder 3.5); --results-path: our fix
VOCODE_DEFAULTS = {"channels": "unitA,unitB", "channel1_spk": 0, "channel2_spk": 4, "sample_rate": 16000,
                   "mix": False, "dur_prediction": False, "results_path": "."}  # fmt: skip
# fairseq-train for speech_dlm (fairseq defaults; the flags of spec appendix A and issue 4)
TRAIN_DEFAULTS = {
    "task": "speech_dlm_task", "criterion": "speech_dlm_criterion", "arch": "speech_dlm", "optimizer": "adam",
    "next_unit_prediction": False, "edge_unit_prediction": True, "duration_prediction": True,
    "delayed_duration_target": True, "max_target_durations": 256, "tokens_per_sample": 1024,
    "sample_break_mode": "none", "main_and_cross_weights": (1.0, 0.0), "general_unit_loss_weight": 0.0,
    "edge_unit_loss_weight": 1.0, "duration_loss_weight": 1.0, "sentence_avg": False,
    "decoder_cross_layers": None, "share_decoder_input_output_embed": False, "decoder_learned_pos": False,
    "dropout": 0.1, "attention_dropout": 0.0, "adam_betas": (0.9, 0.999), "clip_norm": 0.0,
    "warmup_updates": 4000, "warmup_init_lr": -1.0, "max_tokens": None, "update_freq": 1, "num_workers": 1,
    "skip_invalid_size_inputs_valid_test": False, "max_update": 0, "save_interval_updates": 0,
    "keep_last_epochs": -1, "keep_interval_updates": -1, "no_epoch_checkpoints": False, "log_interval": 100,
    "seed": 1, "fp16": False, "bf16": False, "checkpoint_activations": False, "save_dir": "checkpoints",
    "tensorboard_logdir": None, "validate_interval_updates": 0, "required_batch_size_multiple": 8,
}  # fmt: skip


@pytest.mark.parametrize(
    ("command", "required", "defaults"),
    [
        ("sample", ["--in-file", "i", "--out-file", "o", "--ckpt", "c", "--data", "d"], SAMPLE_DEFAULTS),
        ("vocode", ["--in-file", "i", "--vocoder", "v", "--vocoder-cfg", "c"], VOCODE_DEFAULTS),
        ("train", ["DATA"], TRAIN_DEFAULTS),
    ],
)
def test_original_flags_and_defaults(command, required, defaults):
    args = vars(parser_of(command).parse_args(required))
    assert {name: args.get(name, "MISSING") for name in defaults} == defaults


def test_training_architecture_flags():
    parser = parser_of("train")
    args = parser.parse_args(["D", "--arch", "speech_dlm_big", "--decoder-layers", "3", "--decoder-embed-dim", "64",
                              "--decoder-ffn-embed-dim", "128", "--decoder-attention-heads", "4",
                              "--decoder-learned-pos", "--bf16", "--lr", "0.001,0.002"])  # fmt: skip
    assert (args.arch, args.decoder_layers, args.decoder_embed_dim, args.decoder_ffn_embed_dim) == (
        "speech_dlm_big",
        3,
        64,
        128,
    )
    assert args.decoder_attention_heads == 4 and args.decoder_learned_pos and args.bf16 and args.lr == 0.001


# ---- the original READMEs replayed command by command ------------------------------------------
# Each original script name is a shim that runs the dgslm subcommand in its place, and the
# commands below are the original READMEs' text (fairseq examples/textless_nlp/dgslm/README.md,
# hubert_fisher/README.md, vocoder_hifigan/README.md), shell loops and renames included. The
# only edits: `--layer 12` is `--layer 3` (the reference HuBERT has 3 layers), and the training
# command ends with $TINY, size flags for a CPU test (argparse: the last value wins).
SHIMS = {
    "fairseq-preprocess": "preprocess",
    "fairseq-train": "train",
    "fairseq-validate": "validate",
    "wav2vec_manifest.py": "manifest",
    "quantize_with_kmeans.py": "encode",
    "create_input_code.py": "create-code-file",
    "create_code_file.py": "create-code-file",
    "sample_speech_dlm.py": "sample",
    "generate_stereo_waveform.py": "vocode",
}

ORIGINAL_README_COMMANDS = r"""
# hubert_fisher/README.md
python examples/wav2vec/wav2vec_manifest.py --valid-percent=0.0 $AUDIO_DIR --dest=$OUTPUT_DIR --ext=$EXTENSION
MANIFEST_FILE=$OUTPUT_DIR/train.tsv
for CHANNEL_ID in 1 2; do
    python examples/textless_nlp/gslm/speech2unit/clustering/quantize_with_kmeans.py \
        --feature_type hubert \
        --kmeans_model_path path/to/hubert_fisher_km_500.bin \
        --acoustic_model_path path/to/hubert_fisher.pt \
        --layer 3 \
        --manifest_path $MANIFEST_FILE \
        --out_quantized_file_path ${OUTPUT_FILE}-channel${CHANNEL_ID} \
        --extension $EXTENSION \
        --channel_id $CHANNEL_ID
done

# README.md: the code file
CHANNEL1_UNITS=${OUTPUT_FILE}-channel1 CHANNEL2_UNITS=${OUTPUT_FILE}-channel2 OUTPUT_CODE_FILE=codes.txt
python examples/textless_nlp/dgslm/vocoder_hifigan/create_input_code.py \
    $CHANNEL1_UNITS $CHANNEL2_UNITS $OUTPUT_CODE_FILE

# README.md: data preparation
# Preprocess the first channel (unitA)
fairseq-preprocess --source-lang unitA \
    --only-source \
    --trainpref $RAW_DATA_DIR/train \
    --validpref $RAW_DATA_DIR/valid \
    --destdir $BIN_DATA_DIR \
    --workers 20

# Preprocess the second channel (unitB) and reuse the dictionary from the first channel
fairseq-preprocess --source-lang unitB \
    --srcdict $BIN_DATA_DIR/dict.unitA.txt \
    --only-source \
    --trainpref $RAW_DATA_DIR/train \
    --validpref $RAW_DATA_DIR/valid \
    --destdir $BIN_DATA_DIR \
    --workers 20

# Rename the bin & index files
for channel in unitA unitB; do
  for split in train valid; do
    mv $BIN_DATA_DIR/${split}.${channel}-None.${channel}.bin $BIN_DATA_DIR/${split}.${channel}.bin
    mv $BIN_DATA_DIR/${split}.${channel}-None.${channel}.idx $BIN_DATA_DIR/${split}.${channel}.idx
  done
done

# README.md: training, validation
fairseq-train $BIN_DATA_DIR \
    --save-dir $CHECKPOINT_DIR \
    --tensorboard-logdir $CHECKPOINT_DIR \
    --task speech_dlm_task --channels unitA,unitB \
    --next-unit-prediction "False" --edge-unit-prediction "True" \
    --duration-prediction "True" --delayed-duration-target "True" \
    --criterion speech_dlm_criterion \
    --arch speech_dlm --decoder-cross-layers 4 \
    --share-decoder-input-output-embed \
    --dropout 0.1 --attention-dropout 0.1 \
    --optimizer adam --adam-betas "(0.9, 0.98)" --clip-norm 1.0 \
    --lr 0.0005 --lr-scheduler inverse_sqrt --warmup-init-lr 1e-07 \
    --max-tokens 18432 --tokens-per-sample 6144 --sample-break-mode none \
    --update-freq 16 --num-workers 4 --skip-invalid-size-inputs-valid-test \
    --max-update 250000 --warmup-updates 20000 \
    --save-interval-updates 10000 --keep-last-epochs 1 --no-epoch-checkpoints \
    --log-interval 50 --seed 100501 \
    --fp16 --checkpoint-activations $TINY

CHECKPOINT_PATH=$CHECKPOINT_DIR/checkpoint_best.pt
fairseq-validate $BIN_DATA_DIR \
    --task speech_dlm_task \
    --path $CHECKPOINT_PATH \
    --max-tokens 6144 > validate.txt

# README.md: sampling from the trained model, on the code file made above
INPUT_CODE_FILE=codes.txt OUTPUT_FILE=generated.txt DATA_DIR=$BIN_DATA_DIR
python sample_speech_dlm.py \
    --in-file $INPUT_CODE_FILE --out-file $OUTPUT_FILE \
    --ckpt $CHECKPOINT_PATH --data $DATA_DIR

# vocoder_hifigan/README.md, on the generated units
INPUT_CODE_FILE=generated.txt OUTPUT_DIR=wavs
python examples/textless_nlp/dgslm/vocoder_hifigan/generate_stereo_waveform.py \
    --in-file $INPUT_CODE_FILE \
    --vocoder $VOCODER_PATH \
    --vocoder-cfg $VOCODER_CONFIG \
    --results-path $OUTPUT_DIR
"""


def make_shims(folder: Path) -> None:
    """``dgslm`` (this interpreter) and one executable per original script name."""
    folder.mkdir()
    (folder / "dgslm").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dgslm --log-level WARNING "$@"\n')
    for name, command in SHIMS.items():
        if not name.endswith(".py"):
            (folder / name).write_text(f'#!/bin/sh\nexec dgslm {command} "$@"\n')
    cases = "".join(
        f'  */{name}|{name}) shift; exec dgslm {cmd} "$@";;\n' for name, cmd in SHIMS.items() if ".py" in name
    )
    (folder / "python").write_text(f'#!/bin/sh\ncase "$1" in\n{cases}  *) echo "no dgslm for $1" >&2; exit 2;;\nesac\n')
    for shim in folder.iterdir():
        shim.chmod(0o755)


def test_the_original_readmes_replay_command_by_command(reference, tmp_path):
    (tmp_path / "audio").mkdir()
    shutil.copy(reference / "audio/stereo_test.wav", tmp_path / "audio/dlg1.wav")
    (tmp_path / "path/to").mkdir(parents=True)
    shutil.copy(reference / "kmeans/km50.bin", tmp_path / "path/to/hubert_fisher_km_500.bin")
    shutil.copy(reference / "hubert/hubert_small.pt", tmp_path / "path/to/hubert_fisher.pt")
    make_shims(tmp_path / "bin")
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "PYTHONPATH": str(Path(dgslm.__file__).parents[1]),  # this dgslm
        "OMP_NUM_THREADS": "1",
        "AUDIO_DIR": "audio", "OUTPUT_DIR": "manifest", "EXTENSION": "wav", "OUTPUT_FILE": "units/dialogues",
        "RAW_DATA_DIR": str(reference / "speechdlm/raw"), "BIN_DATA_DIR": "data-bin", "CHECKPOINT_DIR": "checkpoints",
        "VOCODER_PATH": str(reference / "vocoder/hifigan_vocoder"),
        "VOCODER_CONFIG": str(reference / "vocoder/config.json"),
        "TINY": "--decoder-layers 2 --decoder-cross-layers 1 --decoder-embed-dim 32 --decoder-ffn-embed-dim 64 "
                "--decoder-attention-heads 2 --tokens-per-sample 512 --max-tokens 1024 --update-freq 1 "
                "--max-update 2 --num-workers 0",
    }  # fmt: skip
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", ORIGINAL_README_COMMANDS], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"

    # quantisation: the original's own units for this file (km50_stereo_codes.txt), its line format
    ch1, ch2 = (reference / "kmeans/km50_stereo_codes.txt").read_text().splitlines()
    assert (tmp_path / "manifest/train.tsv").read_text() == f"{tmp_path / 'audio'}\ndlg1.wav\t51234\n"
    assert not (tmp_path / "manifest/valid.tsv").exists()
    assert (tmp_path / "units/dialogues-channel1").read_text() == f"dlg1-channel1|{ch1}\n"
    assert (tmp_path / "units/dialogues-channel2").read_text() == f"dlg1-channel2|{ch2}\n"
    assert read_code_file(tmp_path / "codes.txt") == [{"audio": "dlg1", "unitA": ch1, "unitB": ch2}]
    # preprocessing + renames: the original's data-bin, byte for byte, and nothing else
    expected = reference / "speechdlm/data-bin"
    assert sorted(p.name for p in (tmp_path / "data-bin").iterdir()) == sorted(p.name for p in expected.iterdir())
    for path in expected.iterdir():
        assert (tmp_path / "data-bin" / path.name).read_bytes() == path.read_bytes(), path.name
    # training wrote the checkpoints fairseq writes; validation printed fairseq's line
    assert {"checkpoint_best.pt", "checkpoint_last.pt"} <= {p.name for p in (tmp_path / "checkpoints").iterdir()}
    assert (tmp_path / "validate.txt").read_text().startswith("valid on 'valid' subset | ")
    # sampling: 500 units per channel (max_len_b), the prompt kept; then one stereo wav
    (generated,) = read_code_file(tmp_path / "generated.txt")
    assert generated["audio"] == "dlg1-generated"
    assert [len(generated[c].split()) for c in ("unitA", "unitB")] == [500, 500]
    assert generated["unitA"].split()[:159] == ch1.split() and generated["unitB"].split()[:159] == ch2.split()
    wave, sr = sf.read(tmp_path / "wavs/dlg1-generated.wav")
    assert sr == 16000 and wave.shape == (500 * 320, 2)
