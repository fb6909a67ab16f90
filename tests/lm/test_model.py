"""SpeechDLM forward pass against the original's outputs, and incremental decoding."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import dgslm.lm.linear as linear_module
from dgslm import onednn
from dgslm.lm.checkpoint import build_model, load_fairseq_checkpoint
from dgslm.lm.config import SpeechDLMConfig
from dgslm.lm.fairseq_cfg import read_model, write_sections
from dgslm.lm.linear import Linear
from dgslm.lm.model import SpeechDLMModel, sinusoidal_positions

TOL = 1e-5
SMALL = "speech_dlm_small.pt"
CROSS = "speech_dlm_small_cross.pt"


@pytest.fixture(scope="module")
def models(reference):
    out = {}
    for name in (SMALL, CROSS):
        cfg, state, _ = load_fairseq_checkpoint(reference / "speechdlm" / "checkpoint" / name)
        out[name] = build_model(cfg, state).eval()
    return out


def _tokens(data, channels) -> torch.Tensor:
    return torch.stack([torch.from_numpy(data[f"src_tokens__{c}"]) for c in channels], dim=-2)


def _max_diff(ours: torch.Tensor, theirs: np.ndarray) -> float:
    return float(np.abs(ours.detach().numpy() - theirs).max())


@pytest.mark.parametrize(
    "checkpoint, npz",
    [
        (SMALL, "forward_seed_example"),
        (SMALL, "forward_rand50"),
        (SMALL, "forward_rand43"),
        (CROSS, "cross_forward_seed_example"),
        (CROSS, "cross_forward_rand50"),
    ],
)
def test_forward_matches_original(models, reference, checkpoint, npz):
    model = models[checkpoint]
    channels = model.cfg.channels
    data = np.load(reference / "speechdlm" / f"{npz}.npz")
    with torch.no_grad():
        out = model(_tokens(data, channels)[None], return_hidden=True)
    C = len(channels)
    assert out.logits.shape[:3] == (1, C, model.cfg.prediction_heads)
    compared = 0
    for c, src in enumerate(channels):
        for k in range(model.cfg.prediction_heads):
            pred = channels[(c + k) % C]
            assert _max_diff(out.logits[0, c, k], data[f"pred_token_logits__{src}__{pred}"]) < TOL
            assert _max_diff(out.durations[0, c, k], data[f"pred_duration__{src}__{pred}"]) < TOL
            logprobs = f"pred_token_logprobs__{src}__{pred}"
            if logprobs in data:
                assert _max_diff(torch.log_softmax(out.logits[0, c, k], -1), data[logprobs]) < TOL
            compared += 1
        if f"features__{src}" in data:  # cross_forward_rand50 has logits and durations only
            assert _max_diff(out.features[0, c], data[f"features__{src}"]) < TOL
        for i in range(model.cfg.layers + 1):
            key = f"inner_state_{i}__{src}"
            if key in data:
                assert _max_diff(out.hidden_states[i][0, c], data[key]) < TOL
    # every head pair of the file was compared
    assert compared == sum(1 for key in data if key.startswith("pred_token_logits__"))


def test_padded_batch_matches_at_valid_positions(models, reference):
    model = models[SMALL]
    data = np.load(reference / "speechdlm" / "forward_batch_rand50_rand43.npz")
    tokens = _tokens(data, model.cfg.channels)
    assert (tokens == model.cfg.pad_index).any()
    with torch.no_grad():
        out = model(tokens)
    for row, length in enumerate(data["lengths"]):
        for c, ch in enumerate(model.cfg.channels):
            assert _max_diff(out.logits[row, c, 0, :length], data[f"pred_token_logits__{ch}__{ch}"][row, :length]) < TOL
            assert _max_diff(out.durations[row, c, 0, :length], data[f"pred_duration__{ch}__{ch}"][row, :length]) < TOL


def _random_tokens(cfg: SpeechDLMConfig, batch: int, length: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(4, cfg.vocab_size, (batch, cfg.num_channels, length), generator=gen)


def _incremental_equals_full(model: SpeechDLMModel, tokens: torch.Tensor, chunks: list[int]) -> None:
    with torch.no_grad():
        full = model(tokens)
        cache = model.make_cache(tokens.shape[0], tokens.shape[-1] + 3)
        pieces, start = [], 0
        for size in chunks:
            pieces.append(model(tokens[..., start : start + size], cache=cache))
            start += size
            assert cache.length == start
    logits = torch.cat([p.logits for p in pieces], dim=3)
    features = torch.cat([p.features for p in pieces], dim=2)
    assert (logits - full.logits).abs().max() < TOL
    assert (features - full.features).abs().max() < TOL
    if full.durations is not None:
        assert (torch.cat([p.durations for p in pieces], dim=3) - full.durations).abs().max() < TOL


@pytest.mark.parametrize("checkpoint", [SMALL, CROSS])
def test_incremental_decoding_equals_full_forward(models, checkpoint):
    model = models[checkpoint]
    tokens = _random_tokens(model.cfg, batch=3, length=17)
    _incremental_equals_full(model, tokens, [1] * 17)
    _incremental_equals_full(model, tokens, [5, 1, 7, 4])


def _tiny(**overrides) -> SpeechDLMModel:
    values = dict(
        vocab_size=40,
        embed_dim=16,
        input_dim=16,
        output_dim=16,
        ffn_dim=32,
        layers=3,
        cross_layers=2,
        attention_heads=2,
        dropout=0.0,
        attention_dropout=0.0,
        max_positions=64,
    )
    values.update(overrides)
    torch.manual_seed(0)
    return SpeechDLMModel(SpeechDLMConfig(**values)).eval()


@pytest.mark.parametrize(
    "overrides",
    [
        dict(channels=("a", "b", "c"), main_and_cross_weights=(1.0, 0.5)),  # 3 channels, cross heads
        dict(learned_positions=True, share_input_output_embed=False),
        dict(cross_layers=-1, duration_prediction=False, scale_embedding=False),
        dict(positional_embeddings=False, final_layer_norm=False, activation_fn="gelu"),
    ],
)
def test_incremental_decoding_variants(overrides):
    model = _tiny(**overrides)
    tokens = _random_tokens(model.cfg, batch=2, length=9)
    _incremental_equals_full(model, tokens, [1] * 9)
    _incremental_equals_full(model, tokens, [4, 5])


def test_fused_decoding_projections_follow_the_weights():
    """Decoding multiplies q/k/v (and the cross k/v) at once with a copy of their weights: not
    in the state dict, made again when a weight changes (a stale copy would break the equality)."""
    model = _tiny()
    tokens = _random_tokens(model.cfg, batch=2, length=6)
    keys = list(model.state_dict())
    _incremental_equals_full(model, tokens, [1] * 6)
    assert onednn._CACHE.get(model.layers[2].cross_channel_attn) and list(model.state_dict()) == keys
    with torch.no_grad():
        model.layers[2].cross_channel_attn.v_proj.weight.mul_(2)
        model.layers[0].self_attn.q_proj.bias.add_(0.5)
    _incremental_equals_full(model, tokens, [1] * 6)
    with torch.inference_mode():  # weights made there have no version counter
        model = _tiny()
    _incremental_equals_full(model, tokens, [1] * 6)


@pytest.mark.parametrize("vendor", ["AuthenticAMD", "GenuineIntel", ""])
def test_linear_layouts_give_the_same_products(monkeypatch, vendor):
    monkeypatch.setattr(linear_module, "_cpu_vendor", lambda: vendor)
    torch.manual_seed(0)
    linear = Linear(64, 48)
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 0.05)):
        linear = linear.to(dtype)
        for rows in (1, 2, 3, 64, 600):
            x = torch.randn(rows, 1, 64, dtype=dtype)
            out = linear(x)
            assert out.shape == (rows, 1, 48) and out.is_contiguous()
            reference = torch.nn.functional.linear(x.double(), linear.weight.double(), linear.bias.double())
            assert (out.double() - reference).abs().max() < tol


def test_three_channel_cross_heads_predict_offset_channels():
    model = _tiny(channels=("c", "a", "b"), main_and_cross_weights=(1.0, 1.0))
    assert model.cfg.channels == ("a", "b", "c")
    tokens = _random_tokens(model.cfg, batch=1, length=5)
    out = model(tokens)
    assert out.logits.shape == (1, 3, 3, 5, 40) and out.durations.shape == (1, 3, 3, 5)
    # head k of every channel applies output_projection[k] to that channel's features
    expected = out.features[0, 2] @ model.output_projection[1].weight.T
    assert torch.allclose(out.logits[0, 2, 1], expected, atol=1e-6)


def test_position_sequences_of_sinusoids_start_after_pad():
    table = sinusoidal_positions(10, 8, pad=1)
    assert torch.equal(table[1], torch.zeros(8))
    freq = torch.exp(torch.arange(4) * -(np.log(10000) / 3))
    assert torch.allclose(table[5, :4], torch.sin(5 * freq)) and torch.allclose(table[5, 4:], torch.cos(5 * freq))
    # beyond the initial table it grows on demand
    model = _tiny(max_positions=4)
    tokens = _random_tokens(model.cfg, batch=1, length=12)
    _incremental_equals_full(model, tokens, [6, 6])


def test_cache_reorder_selects_rows(models):
    model = models[SMALL]
    tokens = _random_tokens(model.cfg, batch=3, length=8, seed=1)
    order = torch.tensor([2, 0, 0])
    with torch.no_grad():
        expected = model(tokens[order]).logits[:, :, :, -3:]
        for index in (order, torch.tensor([2, 0, 0, 1])):  # same size (in place) and a new batch size
            cache = model.make_cache(3, 10)
            model(tokens[..., :5], cache=cache)
            cache.reorder(index)
            assert cache.batch_size == len(index)
            got = model(tokens[index][..., 5:], cache=cache).logits
            assert (got[:3] - expected).abs().max() < TOL


def test_cache_overflow_is_refused(models):
    model = models[SMALL]
    cache = model.make_cache(1, 4)
    with pytest.raises(ValueError, match="cache full"):
        model(_random_tokens(model.cfg, 1, 5), cache=cache)


def test_parameter_counts_of_released_configuration():
    assert SpeechDLMModel(SpeechDLMConfig()).num_parameters() == 23_380_481
    assert SpeechDLMModel(SpeechDLMConfig(cross_layers=-1)).num_parameters() == 25_483_777


def test_tied_output_shares_the_embedding():
    model = _tiny()
    assert model.output_projection[0].weight is model.embed_tokens.weight
    assert torch.equal(model.embed_tokens.weight[model.cfg.pad_index], torch.zeros(16))
    untied = _tiny(share_input_output_embed=False)
    assert untied.output_projection[0].weight is not untied.embed_tokens.weight


def test_activation_checkpointing_gives_the_same_gradients():
    grads = []
    for flag in (False, True):
        model = _tiny(checkpoint_activations=flag, main_and_cross_weights=(1.0, 0.5)).train()
        out = model(_random_tokens(model.cfg, batch=2, length=6))
        (out.logits.square().mean() + out.durations.mean()).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-6)


def test_dropout_is_active_only_in_training():
    model = _tiny(dropout=0.5, attention_dropout=0.5, activation_dropout=0.5)
    tokens = _random_tokens(model.cfg, batch=1, length=6)
    with torch.no_grad():
        assert torch.equal(model(tokens).logits, model(tokens).logits)
        model.train()
        assert not torch.equal(model(tokens).logits, model(tokens).logits)


def test_config_round_trips_through_the_fairseq_cfg(models):
    for model in models.values():
        cfg = model.cfg
        back = read_model(write_sections(cfg), vocab_size=cfg.vocab_size)
        assert back == cfg
        assert SpeechDLMConfig.from_dict(cfg.to_dict()) == cfg
    legacy = dataclasses.replace(models[SMALL].cfg, attention_heads=8)
    flat = {k: v for section in write_sections(legacy).values() for k, v in section.items()}
    assert read_model(flat, vocab_size=504).attention_heads == 8


def test_a_truncated_cache_continues_like_a_fresh_one(models):
    model = models[SMALL]
    tokens = _random_tokens(model.cfg, batch=2, length=9)
    with torch.no_grad():
        cache = model.make_cache(2, 12)
        model(tokens[..., :5], cache=cache)
        assert cache.length == 5
        cache.truncate(2)  # keep the first 2 positions, feed from position 2 again
        again = model(tokens[..., 2:9], cache=cache)
        assert cache.length == 9
        full = model(tokens)
        assert (again.logits - full.logits[..., 2:9, :]).abs().max() < TOL
        cache.truncate(0)
        restarted = model(tokens[..., :4], cache=cache)
        assert (restarted.logits - full.logits[..., :4, :]).abs().max() < TOL
    with pytest.raises(ValueError, match="cannot truncate a cache of 4 positions to 5"):
        cache.truncate(5)
