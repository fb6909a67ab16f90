"""dgslm: Generative Spoken Dialogue Language Modeling (dGSLM) without fairseq.

Stages, one subpackage each:

- ``dgslm.units``      unit file formats (dictionary, code files, fairseq indexed datasets)
- ``dgslm.encoder``    speech to units (HuBERT features + k-means)
- ``dgslm.lm``         SpeechDLM, the two-channel dialogue language model
- ``dgslm.vocoder``    units to speech (unit HiFi-GAN)
- ``dgslm.training``   training utilities shared by the LM and vocoder trainers
- ``dgslm.evaluation`` turn-taking statistics
- ``dgslm.models``     model files: resolution (flags > cache > demo), download, conversion
- ``dgslm.pipeline``   prompt to continued dialogue
- ``dgslm.corpus``     synthetic conversation corpus
- ``dgslm.cli``        the ``dgslm`` command
"""

__version__ = "0.1.0"

_LAZY = {
    "SpeechDLM": "dgslm.lm.hub",
    "UnitEncoder": "dgslm.encoder.unit_encoder",
    "UnitVocoder": "dgslm.vocoder.unit_vocoder",
    "DialoguePipeline": "dgslm.pipeline.dialogue",
}


def __getattr__(name: str):
    """Import the public classes on first use, so ``import dgslm`` stays fast."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dgslm' has no attribute {name!r}")
