"""DialoguePipeline on the reference models: stages, lengths, samples, prompt checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgslm.audio import load_audio
from dgslm.errors import DgslmError
from dgslm.models.resolve import ModelPaths
from dgslm.pipeline.dialogue import DialoguePipeline, stereo_prompt

HOP = 320  # the reference vocoder: upsample rates 5*4*4*2*2


@pytest.fixture(scope="module")
def prompt(reference):
    wave, rate = load_audio(reference / "audio" / "stereo_test.wav", None)
    return wave, rate


def test_encode_gives_the_original_tokenizer_units_per_channel(pipeline, prompt, reference):
    units = pipeline.encode(*prompt)
    expected = (reference / "kmeans" / "km50_stereo_codes.txt").read_text().splitlines()
    assert units == {"unitA": expected[0], "unitB": expected[1]}


def test_continue_units_keeps_the_prompt_and_adds_frames(pipeline):
    units = {"unitA": "5 5 9 9 9 12", "unitB": "7 7 7 3 3 1"}
    outs = pipeline.continue_units(units, frames=4, num_samples=3, seed=7, beam=1)
    assert len(outs) == 3
    for out in outs:
        for channel in ("unitA", "unitB"):
            got = out[channel].split()
            assert len(got) == 10 and got[:6] == units[channel].split()
    assert outs == pipeline.continue_units(units, frames=4, num_samples=3, seed=7, beam=1)  # seeded
    assert len({out["unitA"] + out["unitB"] for out in outs}) > 1  # independent samples
    with pytest.raises(DgslmError, match="several samples need sampling"):
        pipeline.continue_units(units, frames=4, num_samples=2, sampling=False)


def test_continue_dialogue_lengths(pipeline, prompt):
    wave, rate = prompt
    prompt_frames = (round(0.5 * 16000) - 400) // 320 + 1  # 24
    (full,) = pipeline.continue_dialogue(wave, rate, seconds=0.1, prompt_seconds=0.5, seed=1, beam=1)
    assert full.shape == ((prompt_frames + 5) * HOP, 2) and full.dtype == np.float32
    (tail,) = pipeline.continue_dialogue(
        wave, rate, seconds=0.1, prompt_seconds=0.5, seed=1, beam=1, continuation_only=True
    )
    assert tail.shape == (5 * HOP, 2)
    np.testing.assert_allclose(tail, full[prompt_frames * HOP :], atol=1e-6)
    # the prompt part is the resynthesised prompt (the vocoder sees the continuation only near the end)
    resynth = pipeline.vocode(pipeline.encode(stereo_prompt(wave, rate, 0.5)))
    assert resynth.shape == (prompt_frames * HOP, 2)
    np.testing.assert_allclose(full[: 12 * HOP], resynth[: 12 * HOP], atol=1e-4)


def test_length_beyond_the_model_positions(pipeline, prompt):
    wave, rate = prompt  # 159 frames; the reference model holds 255 (the original's limit: context_window=0)
    assert pipeline.max_frames == 255
    with pytest.raises(DgslmError, match=r"^prompt \(159 frames\) \+ continuation \(100 frames\) exceeds the model's "
                                         r"255 frames \(5\.1 s\): at most 1\.92 s of continuation"):  # fmt: skip
        pipeline.continue_dialogue(wave, rate, seconds=2.0, beam=1, context_window=0)
    (longer,) = pipeline.continue_dialogue(wave, rate, seconds=2.0, beam=1)  # default: the training blocks' window
    assert longer.shape == ((159 + 100) * HOP, 2)
    with pytest.raises(DgslmError, match="at least one frame"):
        pipeline.continue_dialogue(wave, rate, seconds=0.001, beam=1)


def test_stereo_prompt_checks(prompt):
    wave, rate = prompt
    with pytest.raises(DgslmError, match="^x.wav: mono prompt.*--allow-mono"):
        stereo_prompt(wave[:, 0], rate, path="x.wav")
    both = stereo_prompt(wave[:, :1], rate, allow_mono=True)
    np.testing.assert_array_equal(both[:, 0], both[:, 1])
    with pytest.raises(DgslmError, match="3 channels"):
        stereo_prompt(np.zeros((1000, 3)), rate)
    assert stereo_prompt(wave, rate, prompt_seconds=1.0).shape == (16000, 2)
    assert stereo_prompt(wave[::2], 8000, prompt_seconds=1.0).shape == (16000, 2)  # resampled to 16 kHz


def test_prompt_shorter_than_one_frame(pipeline, prompt):
    wave, rate = prompt
    with pytest.raises(DgslmError, match=r"^p.wav: prompt too short: 20\.0 ms; one 20 ms unit frame needs 25 ms"):
        pipeline.encode(wave[:320], rate, path="p.wav")
    assert len(pipeline.encode(wave[:400], rate)["unitA"].split()) == 1


def test_without_the_encoder_units_work_and_encode_is_a_clear_error(reference, prompt, caplog):
    """No HuBERT paths: no encoder is loaded; a demo source is announced as a demo."""
    paths = ModelPaths(
        None, None, None, reference / "speechdlm" / "checkpoint" / "speech_dlm_small.pt",
        reference / "speechdlm" / "checkpoint", reference / "vocoder" / "hifigan_vocoder",
        reference / "vocoder" / "config.json", sources={"speech_dlm": "demo somewhere", "hifigan": "flags"},
    )  # fmt: skip
    with caplog.at_level("WARNING", logger="dgslm.pipeline.dialogue"):
        pipe = DialoguePipeline.from_pretrained(paths, "cpu")
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "DEMO models for speech_dlm" in warning and "synthetic" in warning and "--no-demo" in warning
    assert pipe.encoder is None
    with pytest.raises(DgslmError, match="without the HuBERT \\+ k-means units encoder"):
        pipe.encode(*prompt)
    (out,) = pipe.continue_units({"unitA": "5 5 9", "unitB": "7 7 3"}, frames=2, seed=0, beam=1)
    assert len(pipe.vocode(out)) == 5 * HOP


def test_the_stages_pass_ids_that_equal_the_unit_strings(pipeline, prompt):
    wave = stereo_prompt(*prompt, prompt_seconds=0.5)
    units = pipeline.encode(wave)
    ids = pipeline.encode_ids(wave)
    assert torch.equal(ids, pipeline.lm.encode_prompt(units))
    np.testing.assert_array_equal(pipeline.vocode(ids), pipeline.vocode(units))
    (from_audio,) = pipeline.continue_dialogue(*prompt, seconds=0.1, prompt_seconds=0.5, seed=3, beam=1)
    (from_units,) = pipeline.continue_from_units(units, 0.1, seed=3, beam=1)
    np.testing.assert_array_equal(from_audio, from_units.audio)
    assert from_units.units == pipeline.continue_units(units, 5, seed=3, beam=1)[0]
