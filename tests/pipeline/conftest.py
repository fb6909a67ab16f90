"""The reference models (random weights, original formats) as one DialoguePipeline."""

from __future__ import annotations

from pathlib import Path

import pytest


def reference_flags(reference: Path) -> dict[str, Path | int]:
    """resolve_model_paths arguments for the reference HuBERT (layer 3) + km50, SpeechDLM, vocoder."""
    return dict(
        hubert=reference / "hubert" / "hubert_small.pt",
        km=reference / "kmeans" / "km50.bin",
        layer=3,
        speech_dlm=reference / "speechdlm" / "checkpoint" / "speech_dlm_small.pt",
        vocoder=reference / "vocoder" / "hifigan_vocoder",
        vocoder_cfg=reference / "vocoder" / "config.json",
    )


@pytest.fixture(scope="session")
def pipeline(reference):
    from dgslm.pipeline.dialogue import DialoguePipeline

    return DialoguePipeline.from_pretrained(device="cpu", **reference_flags(reference))
