"""The unit HiFi-GAN reproduces the original fairseq vocoder on the reference checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dgslm.errors import DgslmError
from dgslm.vocoder.checkpoint import fold_state_dict, legacy_state_dict, load_generator, read_generator_state
from dgslm.vocoder.generator import durations_from_log
from dgslm.vocoder.unit_vocoder import UnitVocoder


@pytest.fixture(scope="module")
def ref(reference):
    folder = reference / "vocoder"
    meta = json.loads((folder / "waveforms.json").read_text())
    return folder, meta, np.load(folder / "waveforms.npz")


@pytest.fixture(scope="module")
def vocoder(ref):
    folder = ref[0]
    return UnitVocoder.from_pretrained(folder / "hifigan_vocoder", folder / "config.json")


def test_waveforms_match_reference(ref, vocoder):
    _, meta, arrays = ref
    assert len(meta["records"]) == 19
    for key, rec in meta["records"].items():
        wave = vocoder.code2wav(rec["units"], rec["speaker_id"], rec["pred_dur"]).numpy()
        expected = arrays[key]
        assert wave.shape == expected.shape == (rec["n_samples"],), key
        np.testing.assert_allclose(wave, expected, atol=1e-4, rtol=0, err_msg=key)


def test_predicted_durations_match_reference(ref, vocoder):
    _, meta, arrays = ref
    gen = vocoder.generator
    for key, rec in meta["records"].items():
        if not rec["pred_dur"]:
            continue
        code = vocoder.units_tensor(rec["units"])[None]
        with torch.inference_mode():
            log_dur = gen.dur_predictor(gen.dict(code))
        np.testing.assert_allclose(log_dur[0].numpy(), arrays[f"{key}__log_dur"], atol=1e-4, rtol=0)
        assert durations_from_log(log_dur)[0].tolist() == rec["durations"], key


def test_codes2wav_is_channels_first_stack(ref, vocoder):
    _, meta, arrays = ref
    a = meta["records"]["readme_unitA__raw__spk0__dur0"]["units"]
    b = meta["records"]["readme_unitB__raw__spk4__dur0"]["units"]
    wave = vocoder.codes2wav({"unitA": a, "unitB": b}, speaker_ids=(0, 4))
    assert tuple(wave.shape) == tuple(meta["codes2wav"]["codes2wav__readme_example__dur0"]["shape"]) == (2, 4800)
    np.testing.assert_allclose(wave[0].numpy(), arrays["readme_unitA__raw__spk0__dur0"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(wave[1].numpy(), arrays["readme_unitB__raw__spk4__dur0"], atol=1e-4, rtol=0)
    stereo = vocoder.stereo([a, b], mix=False)
    assert stereo.shape == (4800, 2) and torch.equal(stereo, wave.T)
    assert torch.allclose(vocoder.stereo([a, b], mix=True), wave.mean(0))
    # the original crashes here (channels of different lengths); we pad the shorter with silence
    padded = vocoder.codes2wav([a, b], pred_dur=True)
    assert padded.shape == (2, 18560)
    np.testing.assert_allclose(padded[0, :9920].numpy(), arrays["readme_unitA__raw__spk0__dur1"], atol=1e-4, rtol=0)
    assert torch.all(padded[0, 9920:] == 0)


def test_checkpoint_round_trip(ref, tmp_path):
    folder = ref[0]
    state = read_generator_state(folder / "hifigan_vocoder")
    model = load_generator(folder / "hifigan_vocoder", folder / "config.json", weight_norm=True)
    saved = legacy_state_dict(model)
    assert saved.keys() == state.keys()
    for key in state:
        assert torch.equal(saved[key], state[key]), key
    plain = load_generator(folder / "hifigan_vocoder", folder / "config.json")
    folded = fold_state_dict(saved)
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(folded[key], value)


def test_unit_beyond_table(vocoder):
    with pytest.raises(DgslmError, match=r"^codes\.txt:3: unit 500 is beyond the vocoder's table of 500 units$"):
        vocoder.stereo(["1 2 500", "1 2 3"], path="codes.txt", line=3)


def test_speaker_beyond_table(vocoder):
    with pytest.raises(DgslmError, match=r"^codes\.txt:1: speaker id 8 is beyond the vocoder's 8 speakers$"):
        vocoder.stereo(["1 2", "1 2"], speaker_ids=(0, 8), path="codes.txt", line=1)


def test_empty_units(vocoder):
    with pytest.raises(DgslmError, match=r"^codes\.txt:2: no units to vocode"):
        vocoder.stereo(["", "1 2"], path="codes.txt", line=2)


def test_config_disagrees_with_checkpoint(ref, tmp_path):
    folder = ref[0]
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_in_dim"] = 32
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps(cfg))
    with pytest.raises(DgslmError) as err:
        UnitVocoder.from_pretrained(folder / "hifigan_vocoder", bad)
    message = str(err.value)
    assert message.startswith(f"{bad}: config does not match the checkpoint") and "\n" not in message
    assert "conv_pre.weight has shape [32, 64, 7]" in message
    cfg["dur_predictor_params"] = None
    bad.write_text(json.dumps(cfg))
    with pytest.raises(DgslmError, match=r"unexpected dur_predictor\.conv1\.0\.bias"):
        UnitVocoder.from_pretrained(folder / "hifigan_vocoder", bad)


def test_not_a_checkpoint(tmp_path, ref):
    junk = tmp_path / "junk.pt"
    torch.save({"model": {}}, junk)
    with pytest.raises(DgslmError, match=r"junk\.pt: not a unit HiFi-GAN checkpoint"):
        UnitVocoder.from_pretrained(junk, ref[0] / "config.json")


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_checkpoint_code_is_never_run(tmp_path, ref, capsys):
    evil = tmp_path / "evil"
    torch.save({"generator": {"x": _Evil()}}, evil)
    with pytest.raises(DgslmError, match="forbidden global"):
        UnitVocoder.from_pretrained(evil, ref[0] / "config.json")
    assert "must never run" not in capsys.readouterr().out
