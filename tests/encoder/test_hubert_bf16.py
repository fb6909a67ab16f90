"""HuBERT in bf16 autocast (the fused oneDNN path on this CPU): same shape, deterministic, and
within a stated distance of the fp32 features, on the reference models and audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dgslm.audio import load_audio
from dgslm.encoder.features import HubertFeatures
from dgslm.encoder.hubert_checkpoint import load_hubert

# measured 0.9-1.4 % relative L2 error and a worst frame cosine of 0.9991 (layers 1 and 3)
MAX_RELATIVE_ERROR = 0.03
MIN_FRAME_COSINE = 0.995


@pytest.fixture(scope="module")
def wave(reference) -> torch.Tensor:
    ls, _ = load_audio(reference / "audio" / "ls.flac")
    return torch.from_numpy(np.ascontiguousarray(ls[:, 0]))


@pytest.mark.parametrize("name", ["hubert_small", "hubert_small_lnf"])
def test_bf16_features_agree_with_fp32(reference, wave, name):
    model = load_hubert(reference / "hubert" / f"{name}.pt")
    for layer in (1, model.cfg.layers):
        exact = HubertFeatures(model, layer)(wave)
        bf16 = HubertFeatures(model, layer, autocast_dtype=torch.bfloat16)
        first, second = bf16(wave), bf16(wave)
        assert first.shape == exact.shape and first.dtype == torch.float32
        assert torch.equal(first, second)
        assert float((first - exact).norm() / exact.norm()) < MAX_RELATIVE_ERROR
        assert float(F.cosine_similarity(first, exact, dim=-1).min()) > MIN_FRAME_COSINE
