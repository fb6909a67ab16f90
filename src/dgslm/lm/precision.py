"""Smaller weights for decoding: a SpeechDLM in float32 (as trained), bfloat16 or int8.

A decoding step at small batch reads every weight once, so its time follows the bytes of the
weights: bfloat16 halves them, int8 quarters them.

* ``float32``: the model as trained and as the original runs it.
* ``bfloat16``: every floating parameter, buffer and the KV cache in bfloat16.
* ``int8``: weight-only quantisation on top of ``bfloat16``: the linear layers of the
  transformer layers (attention projections and feed-forward, ~99 % of the weights of the
  released model) hold int8 weights with one bfloat16 scale per output row (symmetric,
  max-abs / 127) and multiply bfloat16 activations with PyTorch's own kernel
  (``torch._weight_int8pack_mm`` on CPU; other devices dequantise per call). Embeddings, heads,
  LayerNorms and the KV cache stay bfloat16.

Decoding only: the converted model is for inference (int8 weights are buffers, not parameters).
How close each dtype stays to float32 is measured in ``docs/speed-dtype.md``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgslm.errors import DgslmError
from dgslm.lm.linear import linear_product
from dgslm.lm.model import SpeechDLMModel
from dgslm.onednn import cached

DTYPES = ("float32", "bfloat16", "int8")
_TORCH_DTYPES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.int8: "int8"}
_KERNEL_BLOCK = 16  # torch._weight_int8pack_mm reads the input width in blocks of 16
_KERNEL_ROWS = 4  # beyond, the int8 values in bfloat16 through oneDNN (AMX) are faster on CPU


def dtype_name(dtype: str | torch.dtype | None) -> str:
    """``"float32"``, ``"bfloat16"`` or ``"int8"`` for a name or torch dtype (None: float32)."""
    if dtype is None:
        return "float32"
    name = _TORCH_DTYPES.get(dtype, dtype) if isinstance(dtype, torch.dtype) else str(dtype)
    if name not in DTYPES:
        raise DgslmError(f"unknown decoding dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    return name


class Int8Linear(nn.Module):
    """A linear layer with weight-only int8 weights: ``y = (x @ q^T) * scale + bias``.

    ``q`` (out, in) int8 and ``scale`` (out,) are the symmetric per-row quantisation of the
    float weight; activations, scale and bias are in ``dtype`` (bfloat16). On CPU, up to
    ``_KERNEL_ROWS`` rows (batch-1 decoding) run through ``torch._weight_int8pack_mm``, made for
    few rows; more rows (a batch, a prefill) multiply the same int8 values held exactly in the
    activations' dtype (a copy made at the first such call) with oneDNN's bfloat16 product,
    3-10x faster there, and then scale the rows.
    """

    def __init__(self, linear: nn.Linear, dtype: torch.dtype = torch.bfloat16):
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny) / 127
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale.to(dtype))
        bias = None if linear.bias is None else linear.bias.detach().to(dtype)
        self.register_buffer("bias", bias)

    @staticmethod
    def supports(linear: nn.Linear) -> bool:
        """Whether the CPU kernel takes this layer's input width."""
        return linear.in_features % _KERNEL_BLOCK == 0

    def forward(self, x: Tensor) -> Tensor:
        x2d = x.reshape(-1, self.in_features)
        if x.device.type != "cpu":
            y = F.linear(x2d, self.weight.to(x.dtype) * self.scale[:, None].to(x.dtype), self.bias)
        elif x2d.shape[0] <= _KERNEL_ROWS:
            y = torch._weight_int8pack_mm(x2d, self.weight, self.scale.to(x.dtype))
            y = y if self.bias is None else y + self.bias
        else:
            y = linear_product(x2d, self._values_as(x.dtype))
            y = y * self.scale if self.bias is None else torch.addcmul(self.bias, y, self.scale)
        return y.view(*x.shape[:-1], self.out_features)

    @classmethod
    def concatenated(cls, parts: list[Int8Linear]) -> Int8Linear:
        """One layer whose outputs are those of ``parts`` side by side (their int8 rows and scales)."""
        fused = cls.__new__(cls)
        nn.Module.__init__(fused)
        fused.in_features, fused.out_features = parts[0].in_features, sum(p.out_features for p in parts)
        for name in ("weight", "scale", "bias"):
            tensors = [getattr(p, name) for p in parts]
            fused.register_buffer(name, None if tensors[0] is None else torch.cat(tensors))
        return fused

    def _values_as(self, dtype: torch.dtype) -> Tensor:
        """The int8 values of the weight in ``dtype`` (exact in bfloat16), made once per weight."""
        return cached(self, ("values", dtype), [self.weight], lambda: self.weight.to(dtype))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def quantize_layers(model: SpeechDLMModel) -> int:
    """Replace the linear layers of every transformer layer by :class:`Int8Linear` (those whose
    input width the kernel takes); returns how many were replaced."""
    replaced = 0
    for parent in list(model.layers.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear) and Int8Linear.supports(child):
                setattr(parent, name, Int8Linear(child, model.embed_tokens.weight.dtype))
                replaced += 1
    return replaced


def set_decoding_dtype(model: SpeechDLMModel, dtype: str | torch.dtype | None) -> SpeechDLMModel:
    """Convert ``model`` (float32, in place) to a decoding dtype of :data:`DTYPES`; returns it."""
    name = dtype_name(dtype)
    if name == "float32":
        return model.float()
    model.to(torch.bfloat16)
    if name == "int8":
        quantize_layers(model)
    return model


def decoding_dtype(model: SpeechDLMModel) -> str:
    """The :data:`DTYPES` name of a model converted by :func:`set_decoding_dtype`."""
    if any(isinstance(module, Int8Linear) for module in model.modules()):
        return "int8"
    return dtype_name(model.embed_tokens.weight.dtype)
