"""Fine-tuning and restoring by fairseq's rules: --finetune-from-model (an original .pt, our
checkpoints, our model folders), --restore-file with the --reset-* flags, the architecture and
dictionary checks, --best-checkpoint-metric / --maximize-best-checkpoint-metric / --patience
and --ddp-backend."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from test_train import TINY, Killed, small_data, trainer, weights  # noqa: F401  (small_data: a fixture)

from dgslm.cli.main import main
from dgslm.errors import DgslmError
from dgslm.lm.checkpoint import load_model, save_pretrained
from dgslm.lm.dataset import load_dictionaries
from dgslm.training.checkpointing import load_state

# the reference checkpoint's architecture, as its README gives the flags
SMALL = ["--decoder-layers", "4", "--decoder-cross-layers", "2", "--decoder-embed-dim", "64",
         "--decoder-ffn-embed-dim", "128", "--decoder-attention-heads", "4", "--share-decoder-input-output-embed",
         "--tokens-per-sample", "256"]  # fmt: skip


def val_loss(path) -> float:
    return load_state(path)["extra_state"]["val_loss"]


def original_args(root, *extra: str) -> list[str]:
    return [str(root / "data-bin"), *SMALL, "--finetune-from-model", str(root / "checkpoint/speech_dlm_small.pt"),
            "--fairseq-compat", "--max-tokens", "1024", "--max-tokens-valid", "6144", "--warmup-updates", "2",
            "--num-workers", "0", "--device", "cpu", *extra]  # fmt: skip


def test_finetune_from_the_original_pt_first_validates_as_the_original(reference, tmp_path, capsys):
    """Update 1 runs at the warm-up's learning rate 0, so the first validation sees the
    original's weights: its loss is fairseq-validate's."""
    root = reference / "speechdlm"
    trainer(*original_args(root, "--max-update", "1", "--save-dir", str(tmp_path))).train()
    expected = json.loads((root / "validate.json").read_text())["unrounded_metrics"]["loss"]
    first = val_loss(tmp_path / "checkpoint_last.pt")
    assert first == pytest.approx(expected, rel=1e-5)  # as tests/cli/test_validate.py compares
    assert f"{first:.3f}" == "18.589"  # the original's printed value
    assert main(["validate", str(root / "data-bin"), "--path", str(root / "checkpoint/speech_dlm_small.pt"),
                 "--max-tokens", "6144", "--fairseq-compat", "--json"]) == 0  # fmt: skip
    assert first == json.loads(capsys.readouterr().out)["valid"]["metrics"]["loss"]  # the same computation
    assert load_state(tmp_path / "checkpoint_best.pt")["extra_state"]["best"] == first


def test_finetune_from_the_original_pt_resumes_exactly_after_a_kill(reference, tmp_path):
    """A kill after update 3 and a rerun of the same command (checkpoint_last.pt now exists, so
    --finetune-from-model is ignored) continue exactly as the uninterrupted run."""
    args = original_args(reference / "speechdlm", "--max-update", "4", "--save-interval-updates", "2",
                         "--dropout", "0.2", "--disable-validation")  # fmt: skip
    straight = trainer(*args, "--save-dir", str(tmp_path / "a"))
    assert len(straight.batches) == 3  # the run crosses an epoch boundary
    full = [m["loss"] for m in straight.train()]

    def kill(update: int, _metrics) -> None:
        if update == 3:
            raise Killed

    with pytest.raises(Killed):
        trainer(*args, "--save-dir", str(tmp_path / "b")).train(on_update=kill)
    resumed = trainer(*args, "--save-dir", str(tmp_path / "b"))
    assert resumed.num_updates == 2
    assert [m["loss"] for m in resumed.train()] == full[2:]
    a, b = weights(tmp_path / "a/checkpoint_last.pt"), weights(tmp_path / "b/checkpoint_last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    original = load_state(reference / "speechdlm/checkpoint/speech_dlm_small.pt")["model"]
    assert not torch.equal(a["decoder.layers.0.fc1.weight"], original["decoder.layers.0.fc1.weight"])  # it trained


@pytest.fixture(scope="module")
def trained(small_data, tmp_path_factory):  # noqa: F811
    """A 3-update dgslm run on the echo corpus: (its checkpoint_last.pt, a model folder of it)."""
    save = tmp_path_factory.mktemp("trained")
    trainer(str(small_data), *TINY, "--max-update", "3", "--save-dir", str(save)).train()
    folder = save / "folder"
    model = load_model(save / "checkpoint_last.pt")
    save_pretrained(folder, model, load_dictionaries(small_data, ("unitA", "unitB"))["unitA"])
    return save / "checkpoint_last.pt", folder


@pytest.mark.parametrize("source", ["checkpoint", "folder"])
def test_finetune_loads_weights_only(small_data, trained, tmp_path, source):  # noqa: F811
    path = trained[0] if source == "checkpoint" else trained[1]
    run = trainer(str(small_data), *TINY, "--finetune-from-model", str(path), "--save-dir", str(tmp_path))
    assert (run.num_updates, run.epoch, run.updates_in_epoch, run.best_loss) == (0, 1, 0, None)
    assert not run.optimizer.state
    original = weights(trained[0])
    for name, tensor in run.model.state_dict().items():
        assert torch.equal(tensor, original[f"decoder.{name}"]), name


def test_restore_file_resumes_all_unless_reset(small_data, trained, tmp_path):  # noqa: F811
    source = load_state(trained[0])["extra_state"]["dgslm"]
    run = trainer(str(small_data), *TINY, "--restore-file", str(trained[0]), "--save-dir", str(tmp_path))
    assert (run.num_updates, run.epoch, run.updates_in_epoch) == (3, source["epoch"], source["updates_in_epoch"])
    assert run.optimizer.state and run.best_loss == source["best_loss"]
    run = trainer(str(small_data), *TINY, "--restore-file", str(trained[0]), "--reset-optimizer",
                  "--save-dir", str(tmp_path))  # fmt: skip
    assert (run.num_updates, run.epoch, run.best_loss) == (0, source["epoch"], None) and not run.optimizer.state
    run = trainer(str(small_data), *TINY, "--restore-file", str(trained[0]), "--reset-dataloader",
                  "--reset-meters", "--reset-lr-scheduler", "--save-dir", str(tmp_path))  # fmt: skip
    assert (run.num_updates, run.epoch, run.updates_in_epoch, run.best_loss) == (3, 1, 0, None)
    # a run that saved its own checkpoint_last.pt ignores --finetune-from-model
    shutil.copy(trained[0], tmp_path / "checkpoint_last.pt")
    run = trainer(str(small_data), *TINY, "--finetune-from-model", str(trained[1]), "--save-dir", str(tmp_path))
    assert run.num_updates == 3 and run.optimizer.state


def test_original_pt_with_restore_file_keeps_its_counters(reference, tmp_path):
    root = reference / "speechdlm"
    run = trainer(str(root / "data-bin"), *SMALL, "--max-tokens", "6144", "--save-dir", str(tmp_path),
                  "--restore-file", str(root / "checkpoint/speech_dlm_small.pt"))  # fmt: skip
    assert (run.num_updates, run.epoch, run.updates_in_epoch) == (0, 1, 0)  # what the file records


def error_of(*argv: str) -> str:
    with pytest.raises(DgslmError) as err:
        trainer(*argv)
    return str(err.value)


def test_mismatches_are_one_line_errors_naming_the_difference(reference, small_data, trained, tmp_path):  # noqa: F811
    root = reference / "speechdlm"
    original = str(root / "checkpoint/speech_dlm_small.pt")
    base = [str(root / "data-bin"), "--max-tokens", "6144", "--save-dir", str(tmp_path), "--finetune-from-model"]
    message = error_of(*base, original, *SMALL, "--decoder-layers", "6", "--decoder-ffn-embed-dim", "256")
    assert "--decoder-layers 6 here, 4 in the checkpoint" in message
    assert "--decoder-ffn-embed-dim 256 here, 128 in the checkpoint" in message and "\n" not in message
    assert "dictionary size 8 here, 504" in error_of(str(small_data), *TINY, "--decoder-embed-dim", "64",
        "--decoder-layers", "4", "--decoder-cross-layers", "2", "--decoder-ffn-embed-dim", "128",
        "--decoder-attention-heads", "4", "--tokens-per-sample", "256", "--max-tokens", "1024", "--save-dir", str(tmp_path / "x"),
        "--finetune-from-model", original)  # fmt: skip
    # same size, other symbols: the model folder carries its dictionary
    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    for channel in ("unitA", "unitB"):
        lines = (data / f"dict.{channel}.txt").read_text().splitlines()
        (data / f"dict.{channel}.txt").write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")
    message = error_of(str(data), *TINY, "--save-dir", str(tmp_path / "y"), "--finetune-from-model", str(trained[1]))
    assert "dictionary of channel 'unitA' differs from the checkpoint's 'unitA' at id 4" in message
    assert "cannot be combined with --reset-*" in error_of(*base, original, *SMALL, "--reset-optimizer")
    assert "no such checkpoint" in error_of(*base, str(tmp_path / "missing.pt"), *SMALL)


def test_ddp_backend(small_data, tmp_path):  # noqa: F811
    args = [str(small_data), *TINY, "--save-dir", str(tmp_path), "--no-save", "--max-update", "1"]
    assert trainer(*args, "--ddp-backend", "c10d").cfg.ddp_backend == "c10d"
    assert "--ddp-backend no_c10d is not supported" in error_of(*args, "--ddp-backend", "no_c10d")
    assert main(["train", *args, "--ddp-backend", "fully_sharded"]) == 1


def test_patience_and_best_checkpoint_metric(small_data, tmp_path):  # noqa: F811
    """At learning rate 0 the validation never improves: --patience 2 stops after the third
    validation, and checkpoint_best.pt stays the first one (fairseq's strict comparison)."""
    args = [str(small_data), *TINY, "--lr", "0", "--max-update", "20", "--save-interval-updates", "1"]
    run = trainer(*args, "--patience", "2", "--save-dir", str(tmp_path / "a"))
    run.train()
    assert run.num_updates == 3
    assert load_state(tmp_path / "a/checkpoint_best.pt")["extra_state"]["dgslm"]["num_updates"] == 1
    # a learning run: the lowest loss is the last one; maximising picks the first
    args = [str(small_data), *TINY, "--max-update", "4", "--save-interval-updates", "1"]
    trainer(*args, "--save-dir", str(tmp_path / "min")).train()
    trainer(*args, "--save-dir", str(tmp_path / "max"), "--maximize-best-checkpoint-metric").train()
    losses = [val_loss(path) for path in (tmp_path / "min").glob("checkpoint*.pt")]
    assert len(set(losses)) == 4
    best_min = load_state(tmp_path / "min/checkpoint_best.pt")["extra_state"]
    best_max = load_state(tmp_path / "max/checkpoint_best.pt")["extra_state"]
    assert best_min["val_loss"] == min(losses) and best_max["val_loss"] == max(losses)
    with pytest.raises(DgslmError, match="--best-checkpoint-metric 'bleu' is not a validation metric"):
        trainer(*args, "--save-dir", str(tmp_path / "bad"), "--best-checkpoint-metric", "bleu").train()
