"""Decoding weights in bfloat16 and int8 (dgslm.lm.precision): shapes, the KV cache's dtype,
determinism, and agreement with float32 on the bundled demo model (trained, 1.6 M parameters).

The agreement floors are the quality guard of docs/speed-dtype.md, measured here on units the
float32 demo model samples itself (its own distribution, no data files): the most likely next
unit at every position agrees with float32's on >= 98 % of positions, and the mean loss of
those units is within 1 %.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dgslm.errors import DgslmError
from dgslm.lm.generate import GenerationConfig, generate_batch
from dgslm.lm.hub import SpeechDLM
from dgslm.lm.precision import DTYPES, Int8Linear, decoding_dtype, dtype_name, set_decoding_dtype
from dgslm.models.resolve import DEMO_DIR

SMALL = ("bfloat16", "int8")


@pytest.fixture(scope="module")
def demo() -> dict[str, SpeechDLM]:
    """The demo SpeechDLM loaded in every dtype."""
    return {name: SpeechDLM.from_pretrained(DEMO_DIR / "speech_dlm", dtype=name) for name in DTYPES}


@pytest.fixture(scope="module")
def sequences(demo) -> torch.Tensor:
    """(4, 2, 301) units sampled by the float32 demo model (seeded), the start symbol first."""
    hub = demo["float32"]
    prompts = torch.full((4, 2, 1), hub.dictionary.index("0"))
    config = GenerationConfig(max_len_b=300, beam=1, units_only=True)
    hypos = generate_batch(hub.model, prompts, config, hub.dictionary, torch.Generator().manual_seed(0))
    start = torch.full((4, 2, 1), hub.dictionary.eos())
    return torch.cat([start, torch.stack([h[0].tokens for h in hypos])], dim=2)


def test_dtype_names_and_torch_dtypes():
    assert [dtype_name(d) for d in (None, torch.float32, torch.bfloat16, torch.int8, "int8")] == [
        "float32", "float32", "bfloat16", "int8", "int8"
    ]  # fmt: skip
    with pytest.raises(DgslmError, match="unknown decoding dtype 'float16'"):
        dtype_name("float16")


@pytest.mark.parametrize("rows", [1, 2, 15])  # the int8 kernel (few rows), bfloat16 products (many)
def test_int8_linear_is_the_per_row_quantised_product(rows):
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    q = Int8Linear(linear)
    assert q.weight.dtype == torch.int8 and q.scale.shape == (48,)
    scale = linear.weight.detach().abs().amax(1) / 127
    assert torch.allclose(q.weight.float() * scale[:, None], linear.weight.detach(), atol=float(scale.max()) / 2 + 1e-6)
    x = torch.randn(rows, 1, 64, dtype=torch.bfloat16)
    dequantised = F.linear(x.float(), q.weight.float() * q.scale.float()[:, None], q.bias.float())
    out = q(x)
    assert out.shape == (rows, 1, 48) and out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), dequantised, atol=0.05, rtol=0.02)
    assert list(dict(q.named_buffers())) == ["weight", "scale", "bias"]  # no copy of the values saved


def test_concatenated_int8_linears_are_the_parts_side_by_side():
    torch.manual_seed(0)
    parts = [Int8Linear(torch.nn.Linear(64, n)) for n in (48, 32)]
    fused = Int8Linear.concatenated(parts)
    assert (fused.in_features, fused.out_features) == (64, 80)
    for rows in (2, 15):
        x = torch.randn(rows, 64, dtype=torch.bfloat16)
        assert torch.equal(fused(x), torch.cat([p(x) for p in parts], dim=-1))


def test_int8_replaces_the_transformer_linears_only(demo):
    model = demo["int8"].model
    quantised = [name for name, m in model.named_modules() if isinstance(m, Int8Linear)]
    assert len(quantised) == 3 * 6 + 2 * 4  # per layer q, k, v, out, fc1, fc2; cross layers 4 more
    assert all(name.startswith("layers.") for name in quantised)
    assert model.embed_tokens.weight.dtype == torch.bfloat16
    assert [decoding_dtype(demo[name].model) for name in DTYPES] == list(DTYPES)


@pytest.mark.parametrize("name", DTYPES)
@torch.inference_mode()
def test_forward_shapes_and_a_cache_in_the_weights_dtype(name, demo, sequences):
    model = demo[name].model
    out = model(sequences[:, :, :40])
    reference = demo["float32"].model(sequences[:, :, :40])
    assert out.logits.shape == reference.logits.shape
    assert out.features.shape == reference.features.shape
    cache = model.make_cache(4, 50)
    expected = torch.float32 if name == "float32" else torch.bfloat16
    assert cache.self_kv.dtype == cache.cross_kv.dtype == expected
    buffers = (cache.self_kv.data_ptr(), cache.cross_kv.data_ptr())
    model(sequences[:, :, :10], cache=cache)
    for t in range(10, 20):  # step by step: written in place, never reallocated
        model(sequences[:, :, t : t + 1], cache=cache)
    assert (cache.self_kv.data_ptr(), cache.cross_kv.data_ptr()) == buffers and cache.length == 20


@pytest.mark.parametrize("name", SMALL)
def test_sampling_is_deterministic(name, demo):
    hub = demo[name]
    prompt = {channel: "5 5 5 9 9" for channel in hub.channels}
    first = hub.sample(prompt, max_len_b=60, beam=2, seed=3)
    assert hub.sample(prompt, max_len_b=60, beam=2, seed=3) == first
    assert all(len(units.split()) == 60 for units in first.values())


@pytest.mark.parametrize("name", SMALL)
@torch.inference_mode()
def test_agreement_with_float32_on_the_demo_model(name, demo, sequences):
    reference = demo["float32"].model(sequences[:, :, :-1]).logits[:, :, 0].float()
    logits = demo[name].model(sequences[:, :, :-1]).logits[:, :, 0].float()
    agreement = logits.argmax(-1).eq(reference.argmax(-1)).float().mean()
    assert agreement >= 0.98

    def loss(x: torch.Tensor) -> float:
        return float(F.cross_entropy(x.flatten(0, 2), sequences[:, :, 1:].flatten()))

    assert abs(loss(logits) / loss(reference) - 1) <= 0.01


def test_set_decoding_dtype_converts_back_to_float32(demo):
    model = SpeechDLM.from_pretrained(DEMO_DIR / "speech_dlm", dtype="bfloat16").model
    assert set_decoding_dtype(model, "float32").embed_tokens.weight.dtype == torch.float32
    fp32 = demo["float32"].model.embed_tokens.weight
    assert torch.allclose(model.embed_tokens.weight, fp32, rtol=1e-2)
