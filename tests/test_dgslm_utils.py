"""The original's Python names (dgslm_utils.HubertTokenizer / HifiganVocoder) against the
reference outputs the original's own calls wrote."""

from __future__ import annotations

import json

import numpy as np

from dgslm.dgslm_utils import HifiganVocoder, HubertTokenizer


def test_hubert_tokenizer_as_the_original(reference):
    # the reference call: HubertTokenizer(hubert_small.pt, hubert_layer=3, km50.bin, use_cuda=False)
    tokenizer = HubertTokenizer(reference / "hubert/hubert_small.pt", 3, reference / "kmeans/km50.bin", use_cuda=False)
    expected = (reference / "kmeans/km50_stereo_codes.txt").read_text().splitlines()
    wav = reference / "audio/stereo_test.wav"
    codes = tokenizer.wav2codes(wav)
    assert isinstance(codes, list) and codes == expected
    assert tokenizer.wav2code(wav) == expected[0] and tokenizer.wav2code(wav, channel_id=2) == expected[1]


def test_hifigan_vocoder_returns_numpy_as_the_original(reference):
    folder = reference / "vocoder"
    meta = json.loads((folder / "waveforms.json").read_text())
    arrays = np.load(folder / "waveforms.npz")
    vocoder = HifiganVocoder(folder / "hifigan_vocoder", folder / "config.json", use_cuda=False)
    for key in ("readme_unitA__raw__spk0__dur0", "readme_unitA__raw__spk0__dur1"):
        rec = meta["records"][key]
        wave = vocoder.code2wav(rec["units"], speaker_id=rec["speaker_id"], pred_dur=rec["pred_dur"])
        assert isinstance(wave, np.ndarray) and wave.dtype == np.float32 and wave.shape == (rec["n_samples"],)
        np.testing.assert_allclose(wave, arrays[key], atol=1e-4, rtol=0)
    a = meta["records"]["readme_unitA__raw__spk0__dur0"]["units"]
    b = meta["records"]["readme_unitB__raw__spk4__dur0"]["units"]
    stereo = vocoder.codes2wav({"unitA": a, "unitB": b})  # speakers [0, 4] by default
    assert isinstance(stereo, np.ndarray) and stereo.shape == (2, 4800)
    np.testing.assert_allclose(stereo[1], arrays["readme_unitB__raw__spk4__dur0"], atol=1e-4, rtol=0)
    ids = vocoder.code2wav([int(u) for u in a.split()])  # a list of ids, as the original accepts
    np.testing.assert_array_equal(ids, vocoder.code2wav(a))
