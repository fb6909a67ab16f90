"""SpeechDLM hyper-parameters, and their mapping to and from the original fairseq cfg.

Defaults are the released model's configuration (DLM-5: 6 layers of which the last 4 are
cross-channel, 512 wide, 8 heads, tied output, edge-unit + delayed-duration prediction).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dgslm.model_check import check_numbers

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

    # ---- the original's cfg -------------------------------------------------------------

    @classmethod
    def from_fairseq_cfg(cls, cfg: Mapping[str, Any], vocab_size: int | None = None) -> SpeechDLMConfig:
        """Read the original checkpoint cfg: a dict with ``model``/``task``/``criterion``
        sections, or a flat legacy ``args`` dict. Booleans may be strings ("True"/"False");
        ``decoder_normalize_before`` is ignored (the model is always pre-norm)."""
        flat = "model" not in cfg or not isinstance(cfg.get("model"), Mapping)
        model = cfg if flat else cfg["model"]
        task = cfg if flat else (cfg.get("task") or {})
        crit = cfg if flat else (cfg.get("criterion") or {})

        def get(key: str, default: Any = None, *sections: Mapping[str, Any]) -> Any:
            for section in sections or (model,):
                if section.get(key) is not None:
                    return section[key]
            return default

        d = cls()
        embed_dim = int(get("decoder_embed_dim", d.embed_dim))
        channels = get("channels", None, task)
        weights = str(get("main_and_cross_weights", "1,0", crit, model)).split(",")
        max_positions = get("max_target_positions", None, model, task) or get("tokens_per_sample", 1024, model, task)
        return cls(
            vocab_size=int(vocab_size if vocab_size is not None else d.vocab_size),
            channels=tuple(channels.split(",")) if isinstance(channels, str) else d.channels,
            embed_dim=embed_dim,
            input_dim=int(get("decoder_input_dim", embed_dim)),
            output_dim=int(get("decoder_output_dim", embed_dim)),
            ffn_dim=int(get("decoder_ffn_embed_dim", d.ffn_dim)),
            layers=int(get("decoder_layers", d.layers)),
            cross_layers=int(get("decoder_cross_layers", -1)),
            attention_heads=int(get("decoder_attention_heads", d.attention_heads)),
            dropout=float(get("dropout", d.dropout)),
            attention_dropout=float(get("attention_dropout", 0.0)),
            activation_dropout=float(get("activation_dropout", 0.0) or get("relu_dropout", 0.0)),
            activation_fn=str(get("activation_fn", "relu")),
            learned_positions=_flag(get("decoder_learned_pos", False)),
            max_positions=int(max_positions),
            share_input_output_embed=_flag(get("share_decoder_input_output_embed", False)),
            scale_embedding=not _flag(get("no_scale_embedding", False)),
            final_layer_norm=not _flag(get("no_decoder_final_norm", False)),
            positional_embeddings=not _flag(get("no_token_positional_embeddings", False)),
            next_unit_prediction=_flag(get("next_unit_prediction", False, task, model)),
            edge_unit_prediction=_flag(get("edge_unit_prediction", True, task, model)),
            duration_prediction=_flag(get("duration_prediction", False, model, task)),
            delayed_duration_target=_flag(get("delayed_duration_target", False, model, task)),
            main_and_cross_weights=(float(weights[0]), float(weights[1]) if len(weights) > 1 else 0.0),
            # the released file's internal criterion names them general/edge_loss_weight
            general_unit_loss_weight=float(
                get("general_unit_loss_weight", get("general_loss_weight", 0.0, crit), crit)
            ),
            edge_unit_loss_weight=float(get("edge_unit_loss_weight", get("edge_loss_weight", 1.0, crit), crit)),
            duration_loss_weight=float(get("duration_loss_weight", 1.0, crit)),
            checkpoint_activations=_flag(get("checkpoint_activations", False)),
        )

    def to_fairseq_cfg(self) -> dict[str, dict[str, Any]]:
        """The ``model``, ``task`` and ``criterion`` sections with the original's field names
        (target flags and ``main_and_cross_weights`` as strings, as the original writes them)."""
        weights = ",".join(_num(w) for w in self.main_and_cross_weights)
        targets = {
            "duration_prediction": str(self.duration_prediction),
            "delayed_duration_target": str(self.delayed_duration_target),
        }
        model = {
            "_name": "speech_dlm",
            "activation_fn": self.activation_fn,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "activation_dropout": self.activation_dropout,
            "relu_dropout": 0.0,
            "decoder_embed_dim": self.embed_dim,
            "decoder_output_dim": self.output_dim,
            "decoder_input_dim": self.input_dim,
            "decoder_ffn_embed_dim": self.ffn_dim,
            "decoder_layers": self.layers,
            "decoder_cross_layers": self.cross_layers,
            "decoder_attention_heads": self.attention_heads,
            "decoder_normalize_before": False,  # the original saves False yet runs pre-norm
            "no_decoder_final_norm": not self.final_layer_norm,
            "no_token_positional_embeddings": not self.positional_embeddings,
            "share_decoder_input_output_embed": self.share_input_output_embed,
            "decoder_learned_pos": self.learned_positions,
            "decoder_layerdrop": 0.0,
            "decoder_layers_to_keep": None,
            "layernorm_embedding": False,
            "no_scale_embedding": not self.scale_embedding,
            "checkpoint_activations": self.checkpoint_activations,
            "offload_activations": False,
            "quant_noise_pq": 0.0,
            "quant_noise_pq_block_size": 8,
            "quant_noise_scalar": 0.0,
            "add_bos_token": False,
            "tokens_per_sample": self.max_positions,
            "max_target_positions": None,
            "tpu": False,
            **targets,
            "main_and_cross_weights": weights,
        }
        task = {
            "_name": "speech_dlm_task",
            "data": "",
            "channels": ",".join(self.channels),
            "channel_weights": None,
            "sample_break_mode": "none",
            "tokens_per_sample": self.max_positions,
            "output_dictionary_size": -1,
            "next_unit_prediction": str(self.next_unit_prediction),
            "edge_unit_prediction": str(self.edge_unit_prediction),
            **targets,
            "max_target_durations": 256,
            "add_bos_token": False,
            "max_target_positions": None,
            "shorten_method": "none",
            "shorten_data_split_list": "",
            "seed": 1,
            "dataset_impl": None,
            "data_buffer_size": 10,
            "tpu": False,
        }
        criterion = {
            "_name": "speech_dlm_criterion",
            "sentence_avg": False,
            "main_and_cross_weights": weights,
            "general_unit_loss_weight": self.general_unit_loss_weight,
            "edge_unit_loss_weight": self.edge_unit_loss_weight,
            "duration_loss_weight": self.duration_loss_weight,
        }
        return {"model": model, "task": task, "criterion": criterion}


def _flag(value: Any) -> bool:
    """The original stores some booleans as the strings "True"/"False" (any case)."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _num(value: float) -> str:
    """1.0 -> "1", 0.5 -> "0.5" (how the original writes main_and_cross_weights)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
