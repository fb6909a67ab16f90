"""Training a tiny unit HiFi-GAN on synthetic speech-like audio: it learns, resumes exactly,
and writes checkpoints the original loader layout accepts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from commands import run_ok

from dgslm.audio import write_wav
from dgslm.cli.main import main
from dgslm.units.codes import write_code_file
from dgslm.vocoder.checkpoint import read_generator_state
from dgslm.vocoder.config import VocoderConfig
from dgslm.vocoder.dataset import VocoderDataset
from dgslm.vocoder.trainer import TrainConfig, VocoderTrainer, evaluate_mel_l1
from dgslm.vocoder.unit_vocoder import UnitVocoder

HOP = 320
TINY = {
    "upsample_rates": [5, 4, 4, 2, 2], "upsample_kernel_sizes": [11, 8, 8, 4, 4], "upsample_initial_channel": 32,
    "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]], "num_embeddings": 8, "embedding_dim": 16,
    "model_in_dim": 16, "learning_rate": 0.005, "batch_size": 4, "segment_size": 8960, "lr_decay": 0.999,
    "dur_predictor_params": {"encoder_embed_dim": 16, "var_pred_hidden_dim": 16, "var_pred_kernel_size": 3, "var_pred_dropout": 0.5},
}  # fmt: skip


def speech_like(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, list[int]]:
    """Runs of 'phones' (units 0..7): each a voiced harmonic tone with its own pitch and
    spectral tilt, or noise for unit 7, with a syllable-rate envelope."""
    units: list[int] = []
    while len(units) * HOP < seconds * 16000:
        units += [int(rng.integers(8))] * int(rng.integers(3, 10))
    t = np.arange(HOP) / 16000
    frames = []
    for u in units:
        if u == 7:
            frames.append(rng.normal(0, 0.1, HOP))
        else:
            f0 = 100 + 25 * u
            frames.append(sum(np.sin(2 * np.pi * f0 * h * t) / h ** (0.5 + 0.2 * u) for h in range(1, 8)))
    wave = np.concatenate(frames)
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * np.arange(len(wave)) / 16000)
    return (0.3 * wave * envelope).astype(np.float32), units


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convs: one thread is faster, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    records = []
    for i in range(2):
        (a, units_a), (b, units_b) = speech_like(rng, 3.0), speech_like(rng, 3.0)
        n = min(len(units_a), len(units_b))
        write_wav(root / f"dialogue_{i}.wav", np.stack([a[: n * HOP], b[: n * HOP]], axis=1))
        records.append(
            {
                "audio": f"dialogue_{i}.wav",
                "unitA": " ".join(map(str, units_a[:n])),
                "unitB": " ".join(map(str, units_b[:n])),
            }
        )
    write_code_file(root / "train.txt", records)
    (root / "tiny.json").write_text(json.dumps(TINY))
    return root


def _trainer(corpus, save_dir, max_steps, save_interval, speakers=(0, 4)):
    cfg = VocoderConfig.from_dict({**TINY, "multispkr": "from_input_file", "num_speakers": 5, "model_in_dim": 32})
    dataset = VocoderDataset(corpus / "train.txt", speakers=speakers, num_embeddings=cfg.num_embeddings)
    train = TrainConfig(save_dir=str(save_dir), max_steps=max_steps, batch_size=2, learning_rate=2e-3, save_interval=save_interval,
                        log_interval=1, summary_interval=1000, disc_scale=1 / 16, segment_size=2240)  # fmt: skip
    return VocoderTrainer(cfg, train, dataset)


def test_resume_continues_the_same_curve(corpus, tmp_path):
    full = _trainer(corpus, tmp_path / "full", 3, 2).fit()
    first = _trainer(corpus, tmp_path / "resumed", 2, 2).fit()  # stops after the step-2 checkpoint
    second = _trainer(corpus, tmp_path / "resumed", 3, 2).fit()  # a new process would do the same
    assert [h["step"] for h in first + second] == [1, 2, 3]
    assert first + second == full
    assert "loss_dur" in full[0]
    assert sorted(p.name for p in (tmp_path / "resumed").glob("g_*")) == ["g_00000002", "g_00000003"]


def test_cli_training_lowers_mel_l1_and_writes_original_layout(corpus, tmp_path):
    out = tmp_path / "run"
    args = ["train-vocoder", "--in-file", str(corpus / "train.txt"), "--config", str(corpus / "tiny.json"),
            "--checkpoint_path", str(out), "--training_steps", "40", "--checkpoint_interval", "20", "--batch-size", "2",
            "--segment-size", "4480", "--keep-last", "1", "--disc-scale", "0.0625", "--stdout_interval", "20",
            "--summary_interval", "40"]  # fmt: skip
    assert main(args) == 0
    assert sorted(p.name for p in out.glob("g_*")) == ["g_00000040"]
    state = read_generator_state(out / "g_00000040")
    assert "conv_pre.weight_g" in state and "conv_pre.weight_v" in state and "dur_predictor.proj.weight" in state
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["upsample_initial_channel"] == 32 and cfg["batch_size"] == 2 and not cfg.get("multispkr")
    assert any((out / "tensorboard").iterdir())

    trained = UnitVocoder.from_pretrained(out / "g_00000040", out / "config.json")
    dataset = VocoderDataset(corpus / "train.txt", num_embeddings=8)
    torch.manual_seed(0)
    untrained = VocoderTrainer(
        VocoderConfig.from_dict(cfg), TrainConfig(save_dir=str(tmp_path / "x")), dataset
    ).generator
    before, after = evaluate_mel_l1(untrained, dataset), evaluate_mel_l1(trained.generator, dataset)
    assert after < 0.5 * before, (before, after)


def test_resume_after_kill_gives_the_same_generator(corpus, tmp_path):
    """SIGKILL a CLI run once its first checkpoint exists, rerun the command: the final
    generator equals that of an uninterrupted run, bit for bit."""
    import os
    import signal
    import subprocess
    import sys
    import time

    def command(out):
        return [sys.executable, "-m", "dgslm", "train-vocoder", "--in-file", str(corpus / "train.txt"),
                "--config", str(corpus / "tiny.json"), "--checkpoint_path", str(out), "--training_steps", "12",
                "--checkpoint_interval", "2", "--keep-last", "-1", "--batch-size", "1", "--segment-size", "2240",
                "--disc-scale", "0.0625", "--summary_interval", "1000"]  # fmt: skip

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_ok(command(tmp_path / "full"), env=env)
    victim = subprocess.Popen(
        command(tmp_path / "killed"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while not (tmp_path / "killed" / "checkpoint_last.pt").exists() and victim.poll() is None:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    saved = sorted(p.name for p in (tmp_path / "killed").glob("g_*"))
    assert saved and "g_00000012" not in saved, saved  # it died part-way
    run_ok(command(tmp_path / "killed"), env=env)
    full = read_generator_state(tmp_path / "full" / "g_00000012")
    resumed = read_generator_state(tmp_path / "killed" / "g_00000012")
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_warm_start_begins_from_the_given_generator_unless_resuming(corpus, tmp_path):
    _trainer(corpus, tmp_path / "first", 2, 2).fit()
    source = tmp_path / "first" / "g_00000002"
    expected = UnitVocoder.from_pretrained(source, tmp_path / "first" / "config.json").generator.state_dict()

    warm = _trainer(corpus, tmp_path / "warm", 2, 2)
    warm.warm_start(source)
    folded = UnitVocoder(warm.generator.remove_weight_norm()).generator.state_dict()
    for key, value in expected.items():
        torch.testing.assert_close(folded[key], value, rtol=0, atol=1e-6, msg=key)

    # a save dir with a checkpoint resumes it: init_generator is ignored
    resumed = _trainer(corpus, tmp_path / "first", 3, 2)
    resumed.train_cfg.init_generator = str(tmp_path / "missing")
    assert [h["step"] for h in resumed.fit()] == [3]


def test_dataset_keeps_the_recordings_level_without_peak_normalisation(corpus):
    from dgslm.audio import load_audio

    raw = VocoderDataset(corpus / "train.txt", num_embeddings=8, peak_normalize=False)
    peak = VocoderDataset(corpus / "train.txt", num_embeddings=8)
    audio, _ = load_audio(corpus / "dialogue_0.wav")
    n = raw.items[0].wave.numel()
    np.testing.assert_array_equal(raw.items[0].wave.numpy(), audio[:n, 0])
    assert float(peak.items[0].wave.abs().max()) == pytest.approx(0.95)
    assert float(raw.items[0].wave.abs().max()) < 0.9
