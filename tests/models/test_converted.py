"""Converted safetensors folders load to the same models as the original files."""

from __future__ import annotations

import json

import pytest
import torch

from dgslm.encoder.hubert_checkpoint import load_hubert_folder
from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.errors import DgslmError
from dgslm.lm.hub import SpeechDLM
from dgslm.models.convert import convert_hubert, convert_speech_dlm, convert_vocoder
from dgslm.models.resolve import is_converted
from dgslm.vocoder.checkpoint import load_generator
from dgslm.vocoder.unit_vocoder import UnitVocoder


@pytest.fixture(scope="module")
def converted(reference, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted")
    convert_hubert(reference / "hubert" / "hubert_small.pt", reference / "kmeans" / "km50.bin", 3, out / "hubert")
    convert_speech_dlm(reference / "speechdlm" / "checkpoint" / "speech_dlm_small.pt", None, out / "speech_dlm")
    convert_vocoder(reference / "vocoder" / "hifigan_vocoder", reference / "vocoder" / "config.json", out / "hifigan")
    return out


def test_folders_have_the_documented_layout(converted):
    for model in ("hubert", "speech_dlm", "hifigan"):
        assert is_converted(converted / model, model)
    meta = json.loads((converted / "hubert" / "config.json").read_text())
    assert meta["format"] == "dgslm.hubert" and meta["layer"] == 3 and meta["config"]["layers"] == 3
    assert load_hubert_folder(converted / "hubert")[1] == 3


def test_hubert_folder_gives_the_original_units(converted, reference):
    wav = reference / "audio" / "stereo_test.wav"
    ours = UnitEncoder.from_pretrained(converted / "hubert", converted / "hubert" / "kmeans.safetensors", device="cpu")
    assert ours.wav2codes(wav) == (reference / "kmeans" / "km50_stereo_codes.txt").read_text().splitlines()
    original = UnitEncoder.from_pretrained(
        reference / "hubert" / "hubert_small.pt", reference / "kmeans" / "km50.bin", 3, "cpu"
    )
    wave = torch.randn(1, 4000)
    torch.testing.assert_close(ours.reader(wave), original.reader(wave), rtol=0, atol=0)


def test_speech_dlm_folder_gives_the_original_outputs(converted, reference):
    ckpt = reference / "speechdlm" / "checkpoint" / "speech_dlm_small.pt"
    units = {"unitA": "7 376 376 133", "unitB": "7 499 415 177"}
    ours, original = SpeechDLM.from_pretrained(converted / "speech_dlm").eval(), SpeechDLM.from_pretrained(ckpt).eval()
    torch.testing.assert_close(ours.forward_units(units).logits, original.forward_units(units).logits, rtol=0, atol=0)


def test_vocoder_folder_gives_the_original_waveform(converted, reference):
    ours = UnitVocoder.from_pretrained(converted / "hifigan")
    original = UnitVocoder.from_pretrained(
        reference / "vocoder" / "hifigan_vocoder", reference / "vocoder" / "config.json"
    )
    codes = ["7 376 376 133 178", "7 499 415 177 7"]
    torch.testing.assert_close(ours.stereo(codes, (0, 4)), original.stereo(codes, (0, 4)), rtol=0, atol=0)


def test_failed_conversion_leaves_nothing(reference, tmp_path):
    with pytest.raises(DgslmError, match="768 dims, the HuBERT 96"):
        convert_hubert(
            reference / "hubert" / "hubert_small.pt", reference / "kmeans" / "km_sk0242_50.bin", 3, tmp_path / "h"
        )
    with pytest.raises(DgslmError, match="layer"):
        convert_hubert(reference / "hubert" / "hubert_small.pt", reference / "kmeans" / "km50.bin", 4, tmp_path / "h")
    assert list(tmp_path.iterdir()) == []


def test_vocoder_folder_loads_with_weight_norm_for_training(converted):
    trainable = load_generator(converted / "hifigan", weight_norm=True)
    assert any(".parametrizations.weight." in key for key in trainable.state_dict())
    plain = load_generator(converted / "hifigan")
    for key, value in trainable.remove_weight_norm().state_dict().items():
        torch.testing.assert_close(value, plain.state_dict()[key])
