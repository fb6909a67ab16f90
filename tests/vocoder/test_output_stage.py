"""The vocoder's output stage: the silence unit decodes to digital silence with raised-cosine
fades, speech frames are untouched, the gain is exact, and a config without the keys changes nothing."""

from __future__ import annotations

import math

import pytest
import torch

from dgslm.errors import DgslmError
from dgslm.vocoder.config import VocoderConfig
from dgslm.vocoder.generator import UnitGenerator
from dgslm.vocoder.output_stage import OutputStage
from dgslm.vocoder.unit_vocoder import UnitVocoder

HOP = 10
SPEECH, SILENCE = 3, 0


def test_gate_is_one_in_speech_zero_in_silence_and_a_raised_cosine_between():
    code = torch.tensor([SPEECH] * 4 + [SILENCE] * 6 + [SPEECH] * 4)
    stage = OutputStage(silence_unit=SILENCE, fade_samples=8)
    gain = stage.gate(code, HOP)
    assert gain.shape == (14 * HOP,)
    assert torch.all(gain[: 4 * HOP] == 1) and torch.all(gain[10 * HOP :] == 1)
    start = 4 * HOP  # first silence sample: 1 sample from speech
    for d in range(1, 12):
        expected = 0.5 * (1 + math.cos(math.pi * min(d / 8, 1)))
        assert float(gain[start + d - 1]) == pytest.approx(expected, abs=1e-6), d
        assert float(gain[10 * HOP - d]) == pytest.approx(expected, abs=1e-6), d  # symmetric fade-in
    assert torch.all(gain[4 * HOP + 8 : 10 * HOP - 8] == 0)


def test_all_silence_is_digital_silence_and_no_gate_is_identity():
    wave = torch.randn(2, 5 * HOP)
    codes = [torch.full((5,), SILENCE), torch.tensor([SILENCE, SPEECH, SPEECH, SILENCE, SILENCE])]
    gated = OutputStage(silence_unit=SILENCE, fade_samples=0).apply(wave, codes, HOP)
    assert torch.all(gated[0] == 0)
    assert torch.equal(gated[1, HOP : 3 * HOP], wave[1, HOP : 3 * HOP]) and torch.all(gated[1, 3 * HOP :] == 0)
    assert OutputStage().apply(wave, codes, HOP) is wave


def test_gain_and_config_keys():
    stage = OutputStage.from_config({"output_gain_db": 20.0, "silence_unit": 5, "silence_fade_ms": 10}, 16_000)
    assert stage == OutputStage(20.0, 5, 160)
    wave = torch.randn(1, 4 * HOP)
    torch.testing.assert_close(stage.apply(wave, None, HOP), 10 * wave)
    assert OutputStage.from_config({}, 16_000) == OutputStage(0.0, None, 320)  # default fade, no gate
    for bad in ({"output_gain_db": "loud"}, {"output_gain_db": 100}, {"silence_unit": -1}, {"silence_unit": 1.5},
                {"silence_unit": 1, "silence_fade_ms": -5}):  # fmt: skip
        with pytest.raises(ValueError):
            OutputStage.from_config(bad, 16_000)


def _vocoder(**extra) -> UnitVocoder:
    torch.manual_seed(0)
    cfg = VocoderConfig.from_dict({"num_embeddings": 8, "embedding_dim": 16, "model_in_dim": 16,
                                   "upsample_initial_channel": 32, "resblock_kernel_sizes": [3],
                                   "resblock_dilation_sizes": [[1, 3, 5]], **extra})  # fmt: skip
    return UnitVocoder(UnitGenerator(cfg))


def test_unit_vocoder_applies_the_configs_output_stage():
    units = [[SPEECH] * 5 + [SILENCE] * 8 + [SPEECH] * 5, [SILENCE] * 18]
    plain = _vocoder().codes2wav(units)
    gated = _vocoder(silence_unit=SILENCE, silence_fade_ms=10, output_gain_db=6.0).codes2wav(units)
    gain = 10 ** (6 / 20)
    torch.testing.assert_close(gated[0, : 5 * 320], gain * plain[0, : 5 * 320])
    torch.testing.assert_close(gated[0, 13 * 320 :], gain * plain[0, 13 * 320 :])
    assert torch.all(gated[0, 5 * 320 + 160 : 13 * 320 - 160] == 0) and torch.all(gated[1] == 0)
    assert plain[0, 5 * 320 + 160 : 13 * 320 - 160].abs().max() > 0  # the generator itself is not silent there
    with pytest.raises(DgslmError, match="silence_unit"):
        _vocoder(silence_unit="x")
