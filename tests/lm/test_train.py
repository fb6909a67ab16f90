"""Training: it learns cross-channel structure, resumes exactly after a kill, and 2-process
data parallelism equals one process with --update-freq 2."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest
import torch
from commands import run_ok
from echo_corpus import make_echo_corpus

from dgslm.cli import train as train_cli
from dgslm.cli.main import main
from dgslm.lm.checkpoint import load_model
from dgslm.lm.dataset import SpeechDLMDataset
from dgslm.lm.trainer import Trainer
from dgslm.lm.validation import validate
from dgslm.training.checkpointing import load_state

TINY = ["--decoder-layers", "2", "--decoder-embed-dim", "16", "--decoder-ffn-embed-dim", "32",
        "--decoder-attention-heads", "2", "--share-decoder-input-output-embed", "--tokens-per-sample", "16",
        "--max-tokens", "64", "--lr", "0.003", "--warmup-updates", "4", "--num-workers", "0", "--log-interval", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    return make_echo_corpus(tmp_path_factory.mktemp("echo"), {"train": 6, "valid": 1}, length=40)


def trainer(*argv: str) -> Trainer:
    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    return Trainer(*train_cli.build_configs(parser.parse_args(list(argv))))


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_state(path)["model"]


class Killed(Exception):
    pass


def test_kill_and_resume_equals_uninterrupted_run(small_data, tmp_path):
    args = [str(small_data), *TINY, "--dropout", "0.2", "--decoder-cross-layers", "1", "--max-update", "7",
            "--save-interval-updates", "3", "--keep-interval-updates", "1", "--num-workers", "1"]  # fmt: skip
    straight = trainer(*args, "--save-dir", str(tmp_path / "a"))
    assert len(straight.batches) == 4  # the run crosses an epoch boundary after update 4
    full = [m["loss"] for m in straight.train()]

    def kill(update: int, _metrics) -> None:
        if update == 4:  # before the epoch-end save: the last checkpoint is mid-epoch
            raise Killed

    with pytest.raises(Killed):
        trainer(*args, "--save-dir", str(tmp_path / "b")).train(on_update=kill)
    resumed = trainer(*args, "--save-dir", str(tmp_path / "b"))
    assert resumed.num_updates == 3 and resumed.updates_in_epoch == 3  # the update-3 checkpoint
    rest = [m["loss"] for m in resumed.train()]
    assert rest == full[3:]
    a, b = weights(tmp_path / "a/checkpoint_last.pt"), weights(tmp_path / "b/checkpoint_last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    names = sorted(p.name for p in (tmp_path / "b").glob("checkpoint*.pt"))
    assert names == ["checkpoint1.pt", "checkpoint_2_6.pt", "checkpoint_best.pt", "checkpoint_last.pt"]


def test_checkpoints_load_for_validation_and_sampling(small_data, tmp_path, capsys):
    save = tmp_path / "ck"
    code = main(["train", str(small_data), *TINY, "--max-update", "2", "--save-dir", str(save), "--bf16",
                 "--checkpoint-activations", "--decoder-cross-layers", "1"])  # fmt: skip
    assert code == 0
    model = load_model(save / "checkpoint_last.pt")
    assert model.cfg.layers == 2 and model.cfg.cross_layers == 1
    assert main(["validate", str(small_data), "--path", str(save / "checkpoint_best.pt"), "--max-tokens", "64"]) == 0
    assert "valid on 'valid' subset | " in capsys.readouterr().out


def test_fp16_loss_scaling_runs(small_data, tmp_path):
    run = trainer(str(small_data), *TINY, "--fp16", "--max-update", "2", "--save-dir", str(tmp_path), "--no-save")
    history = run.train()
    assert run.num_updates == 2 and all(torch.isfinite(torch.tensor(m["loss"])) for m in history)
    assert "loss_scale" in history[-1]


def test_weight_decay_is_decoupled_as_in_fairseq_adam(small_data, tmp_path):
    """fairseq's adam shrinks weights by lr * weight_decay beside the Adam step (AdamW); decay
    added to the gradient (torch's Adam) would be normalised away with it."""
    run = trainer(
        str(small_data),
        *TINY,
        "--weight-decay",
        "0.5",
        "--warmup-init-lr",
        "0.003",
        "--max-update",
        "1",
        "--save-dir",
        str(tmp_path),
        "--no-save",
    )
    before = {name: p.detach().clone() for name, p in run.model.named_parameters()}
    run.train()
    group = run.optimizer.param_groups[0]
    lr, decay, (beta1, beta2), eps = group["lr"], group["weight_decay"], group["betas"], group["eps"]
    assert lr > 0 and decay == 0.5
    for name, p in run.model.named_parameters():
        state = run.optimizer.state[p]
        step = (state["exp_avg"] / (1 - beta1)) / ((state["exp_avg_sq"] / (1 - beta2)).sqrt() + eps)
        assert torch.allclose(p.detach(), before[name] * (1 - lr * decay) - lr * step, atol=1e-6), name


@pytest.mark.slow
def test_two_process_torchrun_equals_update_freq_2(small_data, tmp_path):
    common = [str(small_data), *TINY, "--dropout", "0", "--max-update", "3", "--device", "cpu",
              "--decoder-cross-layers", "1", "--disable-validation"]  # fmt: skip
    trainer(*common, "--update-freq", "2", "--save-dir", str(tmp_path / "single")).train()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "dgslm", "--log-level", "WARNING", "train", *common, "--save-dir", str(tmp_path / "ddp")]  # fmt: skip
    run_ok(cmd, env=env, timeout=240, retry_on_transport_error=True)
    single, ddp = weights(tmp_path / "single/checkpoint_last.pt"), weights(tmp_path / "ddp/checkpoint_last.pt")
    assert load_state(tmp_path / "ddp/checkpoint_last.pt")["extra_state"]["dgslm"]["num_updates"] == 3
    for key in single:
        if key.endswith("k_proj.bias"):
            # softmax ignores a constant key bias: its gradient is rounding noise, which Adam
            # normalises into full-size steps, so it differs between any two summation orders
            continue
        torch.testing.assert_close(ddp[key], single[key], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def echo_data(tmp_path_factory) -> Path:
    return make_echo_corpus(tmp_path_factory.mktemp("echo_learn"), {"train": 16, "valid": 4}, length=120, delay=1)


@pytest.fixture
def one_thread():
    """Tiny models train fastest on one thread (and do not fight for shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("cross_layers", ["2", "0"])
def test_cross_channel_layers_learn_the_echo(echo_data, tmp_path, cross_layers, one_thread):
    """Channel B repeats channel A's units a frame later: its next run unit is visible only
    through the cross-channel attention, so without it B stays near chance (1/3)."""
    run = trainer(str(echo_data), "--decoder-layers", "2", "--decoder-cross-layers", cross_layers,
                  "--decoder-embed-dim", "32", "--decoder-ffn-embed-dim", "64", "--decoder-attention-heads", "4",
                  "--share-decoder-input-output-embed", "--dropout", "0", "--lr", "0.005", "--adam-betas", "(0.9, 0.98)",
                  "--warmup-updates", "50", "--max-tokens", "256", "--tokens-per-sample", "16", "--max-update", "350",
                  "--num-workers", "0", "--no-save", "--disable-validation", "--save-dir", str(tmp_path))  # fmt: skip
    run.train()
    data = SpeechDLMDataset.load(echo_data, "valid", run.model_cfg.channels, run.task)
    metrics, _ = validate(run.model, data, run.criterion_cfg, max_tokens=512)
    accuracy = metrics["[unitB-unitB]edge_token_pred_acc"]
    if cross_layers == "0":
        assert accuracy < 45
    else:
        assert accuracy > 80
