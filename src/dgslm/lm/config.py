"""The configurations of a SpeechDLM run, each field held by exactly one of them:

- :class:`SpeechDLMConfig`: the network and the objective it is trained for (channels, which
  targets its heads predict, the delayed duration target, main/cross and loss weights);
- :class:`TaskConfig`: how the training data is cut into blocks;
- :class:`CriterionConfig`: how the losses are summed beyond the objective.

:mod:`dgslm.lm.fairseq_cfg` reads them from the original's cfg and writes them back. Defaults
are the released model's configuration (DLM-5: 6 layers of which the last 4 are cross-channel,
512 wide, 8 heads, tied output, edge-unit + delayed-duration prediction).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dgslm.model_check import check_numbers

TARGETS = ("next", "edge", "duration")  # next unit, edge (run-start) unit, run duration

_SIZES = ("vocab_size", "embed_dim", "input_dim", "output_dim", "ffn_dim", "layers", "attention_heads", "max_positions")
_NUMBER_RULES = {
    **{name: (int, 1) for name in _SIZES},
    "cross_layers": (int, -1),
    "pad_index": (int, 0),
    **{name: (float, 0) for name in ("dropout", "attention_dropout", "activation_dropout", "main_and_cross_weights")},
    **{f"{name}_loss_weight": (float, 0) for name in ("general_unit", "edge_unit", "duration")},
}


@dataclass
class SpeechDLMConfig:
    vocab_size: int = 504
    channels: tuple[str, ...] = ("unitA", "unitB")
    embed_dim: int = 512  # width of the transformer (decoder_embed_dim)
    input_dim: int = 512  # width of embed_tokens; project_in_dim exists iff != embed_dim
    output_dim: int = 512  # width of the heads; project_out_dim exists iff != embed_dim
    ffn_dim: int = 2048
    layers: int = 6
    cross_layers: int = 4  # the last N layers are cross-channel layers; -1 = all
    attention_heads: int = 8
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    activation_fn: str = "relu"  # "relu" or "gelu"
    learned_positions: bool = False
    max_positions: int = 6144  # max_target_positions (= tokens_per_sample by default)
    share_input_output_embed: bool = True
    scale_embedding: bool = True
    final_layer_norm: bool = True
    positional_embeddings: bool = True
    next_unit_prediction: bool = False
    edge_unit_prediction: bool = True
    duration_prediction: bool = True
    delayed_duration_target: bool = True
    main_and_cross_weights: tuple[float, float] = (1.0, 0.0)  # cross heads exist iff [1] != 0
    general_unit_loss_weight: float = 0.0
    edge_unit_loss_weight: float = 1.0
    duration_loss_weight: float = 1.0
    checkpoint_activations: bool = False
    pad_index: int = 1

    def __post_init__(self) -> None:
        if not all(isinstance(c, str) and c for c in self.channels):
            raise ValueError(f"channels must be names, got {self.channels!r}")
        self.channels = tuple(sorted(self.channels))
        check_numbers(vars(self), _NUMBER_RULES)
        self.main_and_cross_weights = tuple(float(w) for w in self.main_and_cross_weights)
        if len(self.channels) < 2:
            raise ValueError(f"SpeechDLM needs at least 2 channels, got {self.channels}")
        if self.embed_dim % self.attention_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by {self.attention_heads} heads")
        if self.share_input_output_embed and self.input_dim != self.output_dim:
            raise ValueError("tied input/output embeddings need input_dim == output_dim")
        if self.activation_fn not in ("relu", "gelu"):
            raise ValueError(f"unsupported activation_fn {self.activation_fn!r}")

    @property
    def num_channels(self) -> int:
        return len(self.channels)

    @property
    def cross_prediction(self) -> bool:
        """True when there are cross-channel prediction heads (one per channel offset)."""
        return self.main_and_cross_weights[1] != 0

    @property
    def prediction_heads(self) -> int:
        """K: token (and duration) heads; head k of channel c predicts channel (c + k) % C."""
        return self.num_channels if self.cross_prediction else 1

    @property
    def targets(self) -> tuple[str, ...]:
        """The trained targets in the original's order; "next" alone when none is on."""
        on = (self.next_unit_prediction, self.edge_unit_prediction, self.duration_prediction)
        return tuple(name for name, flag in zip(TARGETS, on) if flag) or ("next",)

    def loss_weight(self, target: str) -> float:
        """The weight of ``target`` ("next", "edge", "duration") in the loss."""
        weights = (self.general_unit_loss_weight, self.edge_unit_loss_weight, self.duration_loss_weight)
        return dict(zip(TARGETS, weights))[target]

    @property
    def num_cross_layers(self) -> int:
        return self.layers if self.cross_layers < 0 else min(self.cross_layers, self.layers)

    def is_cross_layer(self, index: int) -> bool:
        return index >= self.layers - self.num_cross_layers

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SpeechDLMConfig:
        """Build from ``to_dict()`` output; unknown keys raise ``TypeError``."""
        values = dict(values)
        for key in ("channels", "main_and_cross_weights"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass
class TaskConfig:
    """How the training data is cut into blocks (the original's ``speech_dlm_task`` data options;
    its channels and targets are the model's)."""

    tokens_per_sample: int = 1024
    sample_break_mode: str = "none"
    max_target_durations: int | None = 256


@dataclass
class CriterionConfig:
    """How the losses are summed beyond the model's objective."""

    channel_weights: tuple[float, ...] | None = None  # one per channel (a task field in the original)
    sentence_avg: bool = False
    fairseq_compat: bool = False  # the original's numbers exactly, defects included
