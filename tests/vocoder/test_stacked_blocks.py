"""A stage's residual blocks run as one grouped stack at small inference calls: the same
waveform as block by block (float rounding), on the reference vocoder written by the original."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dgslm import onednn
from dgslm.vocoder import generator as generator_module
from dgslm.vocoder.generator import ResBlock, multi_receptive_field, stack_blocks
from dgslm.vocoder.unit_vocoder import UnitVocoder


@pytest.fixture(scope="module")
def reference_vocoder(reference):
    folder = reference / "vocoder"
    records = json.loads((folder / "waveforms.json").read_text())["records"]
    vocoder = UnitVocoder.from_pretrained(folder / "hifigan_vocoder", folder / "config.json")
    return vocoder, records, np.load(folder / "waveforms.npz")


@pytest.mark.parametrize("stacked", [True, False])
def test_stacked_and_block_by_block_equal_the_original(reference_vocoder, monkeypatch, stacked):
    vocoder, records, arrays = reference_vocoder
    monkeypatch.setattr(generator_module, "MAX_STACKED_WORK", 2**40 if stacked else 0)
    onednn._CACHE.clear()
    for key, rec in list(records.items())[:4]:
        wave = vocoder.code2wav(rec["units"], rec["speaker_id"], rec["pred_dur"]).numpy()
        np.testing.assert_allclose(wave, arrays[key], atol=1e-4, rtol=0, err_msg=key)
    first_blocks = vocoder.generator.resblocks[0]
    assert (("stacked",) in onednn._CACHE.get(first_blocks, {})) == stacked


def test_stack_equals_blocks_and_follows_weight_changes(monkeypatch):
    torch.manual_seed(0)
    blocks = [ResBlock(8, k, [1, 3, 5]).eval() for k in (3, 7, 11)]
    x = torch.randn(2, 8, 60)
    with torch.inference_mode():
        expected = sum(block(x) for block in blocks) / 3
        torch.testing.assert_close(multi_receptive_field(blocks, x), expected, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        blocks[1].convs2[2].weight.mul_(3)  # the stack is rebuilt from the changed weights
        expected = sum(block(x) for block in blocks) / 3
        torch.testing.assert_close(multi_receptive_field(blocks, x), expected, atol=1e-5, rtol=1e-5)


def test_blocks_with_other_dilations_are_not_stacked():
    blocks = [ResBlock(4, 3, [1, 3, 5]), ResBlock(4, 5, [1, 2, 4])]
    assert stack_blocks(blocks) is None
    x = torch.randn(1, 4, 30)
    with torch.inference_mode():
        torch.testing.assert_close(multi_receptive_field(blocks, x), sum(b(x) for b in blocks) / 2)
