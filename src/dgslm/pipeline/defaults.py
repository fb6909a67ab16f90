"""The generation options a user of ``dgslm generate`` and :class:`~dgslm.pipeline.dialogue.DialoguePipeline`
gets unless they say otherwise (``dgslm sample`` keeps the original script's).

Chosen on the audio-level turn-taking check of the bundled demo (tuning dialogues,
``recipes/evaluate_demo_audio.sh``; results in ``docs/demo-results.md``). The context window
None is the model's own training block length (``tokens_per_sample``), so continuations of
any length need no flag. Torch-free, so that ``dgslm generate --help`` can show them.
"""

from __future__ import annotations

from typing import Any

# GenerationConfig fields by name
DIALOGUE_DEFAULTS: dict[str, Any] = {"beam": 1, "temperature": 1.025, "context_window": None}
