"""HuBERT features against the original fairseq outputs (reference/hubert), every layer."""

from __future__ import annotations

import argparse
import os

import numpy as np
import pytest
import torch

from dgslm.audio import load_audio
from dgslm.encoder.hubert import Hubert
from dgslm.encoder.hubert_checkpoint import load_hubert, load_pickled_checkpoint, parse_conv_layers
from dgslm.errors import DgslmError

MODELS = ("hubert_small", "hubert_small_lnf")
INPUTS = ("ls_full", "ls_3s", "stereo_ch1", "stereo_ch2")

# fp32, another summation order than the original's (oneDNN's kernels): within 1e-4 on an AMD
# EPYC, up to 1.3e-4 (layer 1 of hubert_small, values ~1) on an Intel Xeon with AMX
FEATURE_ATOL = 2e-4


@pytest.fixture(scope="module")
def models(reference) -> dict[str, Hubert]:
    return {name: load_hubert(reference / "hubert" / f"{name}.pt") for name in MODELS}


@pytest.fixture(scope="module")
def waves(reference) -> dict[str, torch.Tensor]:
    ls, _ = load_audio(reference / "audio" / "ls.flac")
    stereo, _ = load_audio(reference / "audio" / "stereo_test.wav")
    arrays = {
        "ls_full": ls[:, 0],
        "ls_3s": ls[:48000, 0],
        "stereo_ch1": stereo[:, 0],
        "stereo_ch2": stereo[:, 1],
        "stereo_mix": stereo.mean(1),
    }
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("source", INPUTS)
def test_every_layer_matches_reference(models, waves, reference, name, source):
    ref = np.load(reference / "hubert" / f"feats_{name}__{source}.npz")
    model = models[name]
    layers = [k for k in ref.files if k.startswith("layer")]
    assert len(layers) >= 3
    for key in layers:
        feats = model.extract_features(waves[source], None if key == "layer_none" else int(key[5:]))
        assert feats.shape == ref[key].shape
        np.testing.assert_allclose(feats.numpy(), ref[key], atol=FEATURE_ATOL, rtol=0, err_msg=f"{name} {source} {key}")


@pytest.mark.parametrize("name", MODELS)
def test_stereo_mix_and_intermediates(models, waves, reference, name):
    model = models[name]
    mix = np.load(reference / "hubert" / f"feats_{name}__stereo_mix.npz")["layer3"]
    np.testing.assert_allclose(model.extract_features(waves["stereo_mix"], 3).numpy(), mix, atol=FEATURE_ATOL, rtol=0)
    ref = np.load(reference / "hubert" / f"feats_{name}__ls_3s.npz")
    with torch.no_grad():
        conv = model.feature_extractor(model.normalize_wave(waves["ls_3s"][None]))
        proj = model.project(conv)
    np.testing.assert_allclose(conv[0].T.numpy(), ref["conv"], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(proj[0].numpy(), ref["proj"], atol=1e-5, rtol=1e-5)


def test_later_layers_are_not_computed(models, waves, monkeypatch):
    model = models["hubert_small"]
    last = model.encoder.layers[2]
    monkeypatch.setattr(last, "forward", lambda x: (_ for _ in ()).throw(AssertionError("layer 3 ran")))
    assert model.extract_features(waves["ls_3s"], 2).shape == (149, 96)


def test_chunking_like_the_original(models, waves):
    model = models["hubert_small"]
    wave, size = waves["ls_full"][:80_000], 32_000
    chunked = model.extract_features(wave, 3, max_chunk=size)
    parts = [model.extract_features(wave[s : s + size], 3) for s in range(0, len(wave), size)]
    assert chunked.shape[0] == 2 * model.num_frames(size) + model.num_frames(16_000) == 99 + 99 + 49
    torch.testing.assert_close(chunked, torch.cat(parts))
    # a tail shorter than one frame's 400 samples gives no frame (the original crashes)
    assert model.extract_features(wave[: size + 100], 3, max_chunk=size).shape[0] == model.num_frames(size)
    with pytest.raises(ValueError, match="too short"):
        model.extract_features(wave[:399], 3)


def test_batched_channels_equal_single_passes(models, waves):
    model = models["hubert_small_lnf"]
    both = model.extract_features(torch.stack([waves["stereo_ch1"], waves["stereo_ch2"]]), 2)
    torch.testing.assert_close(both[1], model.extract_features(waves["stereo_ch2"], 2), atol=1e-5, rtol=0)


def test_args_checkpoint_and_fp16_weights(reference, models, waves, tmp_path):
    """Older checkpoints keep the config in an argparse.Namespace; weights may be fp16."""
    state = load_pickled_checkpoint(reference / "hubert" / "hubert_small.pt")
    flat = {**state["cfg"]["model"], **state["cfg"]["task"]}
    flat.pop("_name")
    legacy = {"args": argparse.Namespace(**flat), "cfg": None, "model": state["model"]}
    torch.save(legacy, tmp_path / "legacy.pt")
    model = load_hubert(tmp_path / "legacy.pt")
    torch.testing.assert_close(
        model.extract_features(waves["ls_3s"], 3), models["hubert_small"].extract_features(waves["ls_3s"], 3)
    )
    legacy["model"] = {k: v.half() for k, v in state["model"].items()}
    torch.save(legacy, tmp_path / "half.pt")
    assert load_hubert(tmp_path / "half.pt").encoder.layers[0].fc1.weight.dtype == torch.float32


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_code_in_a_checkpoint_is_refused(tmp_path):
    torch.save({"model": {}, "cfg": _Exploit()}, tmp_path / "evil.pt")
    with pytest.raises(DgslmError, match="refusing.*evil.pt.*system"):
        load_hubert(tmp_path / "evil.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DgslmError, match="junk.pt"):
        load_hubert(tmp_path / "junk.pt")


def test_conv_layer_expression_parser():
    assert parse_conv_layers("[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2") == (
        ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2
    )
    with pytest.raises(ValueError):
        parse_conv_layers("__import__('os').system('x')")


@pytest.mark.parametrize("name", MODELS)
def test_streaming_windows(models, waves, name):
    model, wave = models[name], waves["ls_3s"]
    full = model.extract_features(wave, 2)
    # one window covering everything is the original's single pass
    torch.testing.assert_close(model.extract_streaming(wave, 2, chunk_frames=1000), full)
    # small windows keep the whole-file frame grid; window 1 (frames 0..49) is a pass over its samples
    streamed = model.extract_streaming(wave, 2, chunk_frames=50, context_frames=20)
    assert streamed.shape == full.shape == (149, full.shape[1])
    first = model(model.normalize_wave(wave[None])[:, : 49 * 320 + 400], 2)[0]
    torch.testing.assert_close(streamed[:50], first)


def test_streaming_frames_ignore_later_audio(models, waves):
    model, wave = models["hubert_small"], waves["ls_3s"]  # no whole-file normalisation
    streamed = model.extract_streaming(wave, 3, chunk_frames=50, context_frames=20)
    cut = 99 * 320 + 400  # exactly the samples of frames 0..99
    torch.testing.assert_close(model.extract_streaming(wave[:cut], 3, 50, 20), streamed[:100])
