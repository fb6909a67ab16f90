"""Units to speech: the unit HiFi-GAN vocoder."""

from dgslm.vocoder.unit_vocoder import UnitVocoder

__all__ = ["UnitVocoder"]
