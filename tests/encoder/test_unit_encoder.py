"""UnitEncoder (the original HubertTokenizer's API) and the log-mel / MFCC feature types."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from dgslm.audio import load_audio, resample
from dgslm.encoder.features import LogMelFeatures, MfccFeatures, build_feature_reader, deltas
from dgslm.encoder.kmeans import KMeansQuantizer
from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.errors import DgslmError


@pytest.fixture(scope="module")
def encoder(reference) -> UnitEncoder:
    return UnitEncoder.from_pretrained(
        reference / "hubert" / "hubert_small.pt", reference / "kmeans" / "km50.bin", layer=3, device="cpu"
    )


def test_wav2codes_equals_the_original_tokenizer(encoder, reference):
    expected = (reference / "kmeans" / "km50_stereo_codes.txt").read_text().splitlines()
    codes = encoder.wav2codes(reference / "audio" / "stereo_test.wav")
    assert isinstance(codes, list) and codes == expected
    assert encoder.wav2code(reference / "audio" / "stereo_test.wav", channel_id=2) == expected[1]
    wave, sr = sf.read(reference / "audio" / "stereo_test.wav", dtype="float32")
    assert encoder.encode(wave, sr) == expected


def test_8khz_audio_is_resampled_not_refused(encoder, reference, tmp_path):
    wave, _ = load_audio(reference / "audio" / "stereo_test.wav")
    sf.write(tmp_path / "fisher.wav", resample(wave, 16000, 8000), 8000, subtype="PCM_16")
    codes = encoder.wav2codes(tmp_path / "fisher.wav")
    n = len(load_audio(tmp_path / "fisher.wav")[0])
    assert [len(c.split()) for c in codes] == [(n - 400) // 320 + 1] * 2
    # the resampled speech channel keeps most units of the 16 kHz original
    reference_units = (reference / "kmeans" / "km50_stereo_codes.txt").read_text().split("\n")[0].split()
    same = sum(a == b for a, b in zip(codes[0].split(), reference_units))
    assert same > 0.5 * len(reference_units)


def test_mono_and_bad_files_are_refused(encoder, reference, tmp_path):
    with pytest.raises(DgslmError, match="ls.flac.*mono"):
        encoder.wav2codes(reference / "audio" / "ls.flac")
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(DgslmError, match="notes.wav.*cannot read"):
        encoder.wav2codes(tmp_path / "notes.wav")
    with pytest.raises(DgslmError, match="too short"):
        encoder.encode(np.zeros((300, 2), dtype=np.float32), 16000)


@pytest.mark.parametrize("reader,dim", [(LogMelFeatures(), 80), (MfccFeatures(), 39)])
def test_spectral_features_on_the_hubert_frame_grid(reader, dim, reference):
    wave, _ = load_audio(reference / "audio" / "stereo_test.wav")
    feats = reader(torch.from_numpy(np.ascontiguousarray(wave.T)))
    assert feats.shape == (2, (len(wave) - 400) // 320 + 1, dim) and torch.isfinite(feats).all()
    # frame t sees samples [320 t, 320 t + 400) (+-4 frames for MFCC deltas): appending audio
    # leaves earlier frames unchanged
    longer = reader(torch.from_numpy(np.ascontiguousarray(np.concatenate([wave, wave[:1000]]).T)))
    keep = feats.shape[1] - (4 if dim == 39 else 0)
    torch.testing.assert_close(longer[:, :keep], feats[:, :keep])
    # 4x louder adds log(16) to every log-mel energy above the floor
    if dim == 80:
        louder = reader(torch.from_numpy(np.ascontiguousarray(4 * wave.T)))
        audible = feats > np.log(reader.floor)
        assert audible.float().mean() > 0.3
        torch.testing.assert_close(
            (louder - feats)[audible], torch.full_like(feats[audible], float(np.log(16.0))), atol=1e-3, rtol=0
        )


@pytest.mark.parametrize("reader,noise_dbfs", [(LogMelFeatures(), -60), (MfccFeatures(), -65)])  # MFCC: wider bands
def test_silence_and_faint_noise_are_one_constant_frame(reader, noise_dbfs):
    """The log-mel floor (50 dB under a full-scale tone) makes silence one k-means unit."""
    noise = 10 ** (noise_dbfs / 20) * torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    silence = reader(torch.cat([torch.zeros(1, 16000), noise]))
    torch.testing.assert_close(silence, silence[:1, :1].expand_as(silence), atol=1e-5, rtol=0)
    tone = reader(0.1 * torch.sin(torch.arange(16000.0) / 16000 * 2 * np.pi * 440)[None])
    assert (tone - silence[:1]).abs().amax() > 1


def test_deltas_of_a_linear_ramp():
    ramp = torch.arange(10.0).view(1, 10, 1) * 3
    d = deltas(ramp)[0, :, 0]
    torch.testing.assert_close(d[2:-2], torch.full((6,), 3.0))  # slope inside, replicated edges shrink it
    assert d[0] < 3.0


def test_units_without_pretrained_weights(reference):
    wave, _ = load_audio(reference / "audio" / "stereo_test.wav")
    reader = build_feature_reader("mfcc")
    feats = reader(torch.from_numpy(np.ascontiguousarray(wave.T))).reshape(-1, 39)
    encoder = UnitEncoder(reader, KMeansQuantizer(feats[::37].numpy()), device="cpu")
    codes = encoder.encode(wave)
    assert len(codes) == 2 and len(codes[0].split()) == 159
    with pytest.raises(DgslmError, match="dims"):
        UnitEncoder(LogMelFeatures(), KMeansQuantizer(feats[:4].numpy()))


def test_silence_smoothing_from_a_unit_folder(tmp_path):
    """A 60 ms gap inside a tone is one silence run; --min-silence-frames 5 bridges it, and a
    feature-only unit folder's config.json carries the setting to every user of the folder."""
    import json

    from dgslm.encoder.kmeans import save_centers

    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    wave = np.concatenate([tone, np.zeros(960, np.float32), tone])  # 1 s, 60 ms, 1 s
    reader = LogMelFeatures()
    centers = torch.stack([reader(torch.zeros(1, 800))[0, 0], reader(torch.from_numpy(tone[None]))[0, 10]])
    plain = UnitEncoder(reader, KMeansQuantizer(centers.numpy()), "cpu").encode(wave)[0].split()
    assert "0" in plain[40:60] and plain[0] == "1"  # the gap is silence (unit 0)
    save_centers(tmp_path / "kmeans.safetensors", centers.numpy())
    meta = {"format": "dgslm.features", "version": 1, "feature_type": "logmel", "n_mels": 80, "n_clusters": 2,
            "layer": None, "min_silence_frames": 5, "min_speech_frames": 3}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(meta))
    encoder = UnitEncoder.from_pretrained(tmp_path, tmp_path / "kmeans.safetensors", device="cpu")
    assert encoder.silence_unit() == 0
    assert encoder.encode(wave)[0].split() == ["1"] * len(plain)
    off = UnitEncoder.from_pretrained(
        tmp_path, tmp_path / "kmeans.safetensors", device="cpu", min_silence=0, min_speech=0
    )
    assert off.encode(wave)[0].split() == plain


def test_unit_folder_floor_reaches_the_reader(tmp_path):
    """The log-mel floor recorded in a unit folder is the one its features use: a folder made
    with another floor must not be read with the code's default."""
    import json

    from dgslm.encoder.features import FLOOR_DB
    from dgslm.encoder.kmeans import save_centers

    save_centers(tmp_path / "kmeans.safetensors", np.zeros((2, 80), np.float32))
    meta = {"format": "dgslm.features", "version": 1, "feature_type": "logmel", "n_mels": 80, "floor_db": 30}
    (tmp_path / "config.json").write_text(json.dumps(meta))
    encoder = UnitEncoder.from_pretrained(tmp_path, tmp_path / "kmeans.safetensors", device="cpu")
    assert encoder.reader.floor == pytest.approx(LogMelFeatures(floor_db=30).floor)
    assert encoder.reader.floor == pytest.approx(LogMelFeatures().floor * 10 ** ((FLOOR_DB - 30) / 10))
    meta["floor_db"] = "loud"
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(DgslmError, match="config.json.*floor_db must be a number"):
        UnitEncoder.from_pretrained(tmp_path, tmp_path / "kmeans.safetensors", device="cpu")
