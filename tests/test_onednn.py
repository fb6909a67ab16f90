"""The fused oneDNN layers equal the plain torch layers (fp32), follow weight changes, keep
autograd on the plain path, and compute in bf16 under CPU autocast."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dgslm import onednn
from dgslm.onednn import channels_last, conv1d, fused_dtype, linear


def plain_linear(x, layers, activation="none", residual=None):
    y = torch.cat([layer(x) for layer in layers], -1)
    y = F.gelu(y) if activation == "gelu" else y
    return y if residual is None else residual + y


@pytest.fixture(autouse=True)
def fuse_every_conv(monkeypatch):
    """The tests' convolutions are small: fuse them anyway, to compare the two paths."""
    monkeypatch.setattr(onednn, "MIN_FUSED_CONV_MACS", 0)


@pytest.fixture
def layers():
    torch.manual_seed(0)
    return [nn.Linear(48, 32), nn.Linear(48, 32), nn.Linear(48, 16)]


def test_this_cpu_takes_the_fused_path():
    """The CI CPU (x86, AVX-512 bf16) runs the fused ops: the tests below compare two paths."""
    x = torch.zeros(2, 3)
    with torch.inference_mode():
        assert fused_dtype(x) == torch.float32
        with torch.autocast("cpu", torch.bfloat16):
            assert fused_dtype(x) == torch.bfloat16
    assert fused_dtype(x) is None  # autograd on
    with torch.inference_mode():
        assert fused_dtype(x.double()) is None


@pytest.mark.parametrize("activation", ["none", "gelu"])
@pytest.mark.parametrize("n_layers", [1, 3])
def test_linear_equals_plain(layers, activation, n_layers):
    x = torch.randn(2, 7, 48)
    with torch.inference_mode():
        fused = linear(x, layers[:n_layers], activation)
        expected = plain_linear(x, layers[:n_layers], activation)
    assert fused.shape == expected.shape
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-5)


def test_linear_residual_and_autograd_path(layers):
    x, residual = torch.randn(5, 48), torch.randn(5, 32)
    with torch.inference_mode():
        fused = linear(x, layers[0], residual=residual)
    torch.testing.assert_close(fused, residual + layers[0](x).detach(), atol=1e-5, rtol=1e-5)
    y = linear(x, layers[0], residual=residual)  # autograd on: the plain path, gradients flow
    y.sum().backward()
    assert layers[0].weight.grad is not None
    with pytest.raises(ValueError, match="residual"):
        linear(x, layers[0], "gelu", residual=residual)


def test_packed_weights_follow_changes(layers):
    x = torch.randn(4, 48)
    with torch.inference_mode():
        before = linear(x, layers[0])
    with torch.no_grad():
        layers[0].weight.mul_(2)  # in place: the packed copy must be rebuilt
        expected = layers[0](x)
    with torch.inference_mode():
        after = linear(x, layers[0])
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, expected, atol=1e-5, rtol=1e-5)
    fresh = nn.Linear(48, 32)
    layers[0].load_state_dict(fresh.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(linear(x, layers[0]), fresh(x).detach(), atol=1e-5, rtol=1e-5)
    assert layers[0] in onednn._CACHE


def test_weights_made_in_inference_mode(layers):
    """A model built or loaded under ``torch.inference_mode`` (inference tensors, no version
    counter) runs the fused path too."""
    x = torch.randn(4, 48)
    with torch.inference_mode():
        layer = nn.Linear(48, 32)
        assert layer.weight.is_inference()
        torch.testing.assert_close(linear(x, layer), layer(x), atol=1e-5, rtol=1e-5)
        conv = nn.Conv1d(16, 8, 3, padding=1)
        y = torch.randn(2, 16, 20)
        torch.testing.assert_close(conv1d(y, conv, "leaky_relu", slope=0.1), F.leaky_relu(conv(y), 0.1),
                                   atol=1e-5, rtol=1e-5)  # fmt: skip


CONVS = {
    "dilated": lambda: nn.Conv1d(16, 16, 5, dilation=3, padding=6),
    "strided, no bias": lambda: nn.Conv1d(1, 24, 10, stride=5, bias=False),
    "grouped": lambda: nn.Conv1d(32, 32, 8, padding=4, groups=4),
    "transposed": lambda: nn.ConvTranspose1d(16, 8, 8, stride=4, padding=2),
}


@pytest.mark.parametrize("name", CONVS)
@pytest.mark.parametrize("activation", ["none", "gelu", "leaky_relu"])
def test_conv_equals_plain(name, activation):
    torch.manual_seed(1)
    conv = CONVS[name]()
    x = torch.randn(2, conv.in_channels, 50)
    with torch.inference_mode():
        expected = conv(x)
        expected = {"none": expected, "gelu": F.gelu(expected), "leaky_relu": F.leaky_relu(expected, 0.1)}[activation]
        fused = conv1d(channels_last(x), conv, activation, slope=0.1)
        from_contiguous = conv1d(x, conv, activation, slope=0.1)
    assert fused.shape == expected.shape and fused.stride(1) == 1  # channels-last strided out
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(from_contiguous, fused, atol=0, rtol=0)


def test_conv_residual():
    conv = CONVS["dilated"]()
    x, residual = torch.randn(3, 16, 40), torch.randn(3, 16, 40)
    with torch.inference_mode():
        fused = conv1d(x, conv, residual=residual)
        torch.testing.assert_close(fused, residual + conv(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="transposed"):
        conv1d(torch.randn(1, 16, 9), CONVS["transposed"](), residual=torch.randn(1, 8, 36))


def test_bf16_autocast_is_deterministic_and_close():
    torch.manual_seed(2)
    conv, layer = nn.Conv1d(16, 16, 3, padding=1), nn.Linear(16, 24)
    x = torch.randn(2, 16, 64)
    with torch.inference_mode():
        exact = linear(conv1d(x, conv, "gelu").transpose(1, 2), layer)
        with torch.autocast("cpu", torch.bfloat16):
            runs = [linear(conv1d(x, conv, "gelu").transpose(1, 2), layer) for _ in range(2)]
    assert runs[0].dtype == torch.bfloat16 and runs[0].shape == exact.shape
    assert torch.equal(runs[0], runs[1])
    assert float((runs[0].float() - exact).norm() / exact.norm()) < 0.02


def test_small_convolutions_take_the_plain_path(monkeypatch):
    """Under ``MIN_FUSED_CONV_MACS`` multiply-adds a convolution runs torch's own op (its output
    keeps the input's layout), from it the fused primitive (channels-last strided output)."""
    monkeypatch.setattr(onednn, "MIN_FUSED_CONV_MACS", 4_000_000)
    conv = nn.Conv1d(64, 64, 11, padding=5)
    small, large = torch.randn(1, 64, 80), torch.randn(1, 64, 1000)  # 3.6 M and 45 M multiply-adds
    assert onednn.conv_macs(small, conv) < 4_000_000 <= onednn.conv_macs(large, conv)
    with torch.inference_mode():
        assert conv1d(small, conv).is_contiguous()
        out = conv1d(large, conv)
        assert out.stride(1) == 1 and not out.is_contiguous()
        torch.testing.assert_close(out, conv(large), atol=1e-5, rtol=1e-5)
