"""Live full-duplex dialogue: the person on one channel, the model on the other, 20 ms at a time.

Modules: :mod:`~dgslm.live.units` (the person's streaming units), :mod:`~dgslm.live.dialogue`
(one SpeechDLM frame), :mod:`~dgslm.live.vocoder` (streaming unit HiFi-GAN),
:mod:`~dgslm.live.session` (:class:`DuplexSession`, the Python API).
"""

from dgslm.live.session import DuplexSession

__all__ = ["DuplexSession"]
