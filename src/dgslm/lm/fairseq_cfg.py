"""The original's fairseq cfg: read into our configurations, written back from them.

Every field of the ``model``, ``task`` and ``criterion`` sections has one owner:

- :class:`SpeechDLMConfig`: the ``model`` section; the task's ``channels``,
  ``{next_unit,edge_unit,duration}_prediction`` and ``delayed_duration_target``; the
  criterion's ``main_and_cross_weights`` and loss weights (the original repeats some of them
  in the model section; they are written from the same field);
- :class:`TaskConfig`: the task's ``tokens_per_sample``, ``sample_break_mode``,
  ``max_target_durations``;
- :class:`CriterionConfig`: the task's ``channel_weights`` and the criterion's ``sentence_avg``.

Fields none of them holds (``data``, ``seed``, ``quant_noise_pq``, ...) are written with the
original's defaults, or kept from a base cfg (the raw cfg of a loaded original) whose section
has the same ``_name``. Booleans may be the strings "True"/"False" (:func:`parse_bool`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from dgslm.lm.config import CriterionConfig, SpeechDLMConfig, TaskConfig

SECTIONS = ("model", "task", "criterion")

# the fields no configuration holds, with the values the original writes
UNOWNED: dict[str, dict[str, Any]] = {
    "model": {
        "_name": "speech_dlm",
        "relu_dropout": 0.0,
        "decoder_normalize_before": False,  # the original saves False yet runs pre-norm
        "decoder_layerdrop": 0.0,
        "decoder_layers_to_keep": None,
        "layernorm_embedding": False,
        "offload_activations": False,
        "quant_noise_pq": 0.0,
        "quant_noise_pq_block_size": 8,
        "quant_noise_scalar": 0.0,
        "add_bos_token": False,
        "tpu": False,
    },
    "task": {
        "_name": "speech_dlm_task",
        "data": "",
        "output_dictionary_size": -1,
        "add_bos_token": False,
        "max_target_positions": None,
        "shorten_method": "none",
        "shorten_data_split_list": "",
        "seed": 1,
        "dataset_impl": None,
        "data_buffer_size": 10,
        "tpu": False,
    },
    "criterion": {"_name": "speech_dlm_criterion"},
}


def parse_bool(value: Any) -> bool:
    """A fairseq boolean: True/False, or the strings "True"/"False" (any case); ValueError else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false"):
        raise ValueError(f"expected True or False, got {value!r}")
    return text == "true"


def parse_floats(value: Any, count: int | None = None) -> tuple[float, ...]:
    """ "1,0.5" -> (1.0, 0.5); ValueError unless ``count`` numbers when ``count`` is given."""
    parsed = tuple(float(v) for v in (value.split(",") if isinstance(value, str) else value))
    if count is not None and len(parsed) != count:
        raise ValueError(f"expected {count} comma-separated numbers, got {value!r}")
    return parsed


def format_floats(values: Sequence[float]) -> str:
    """(1.0, 0.5) -> "1,0.5", as the original writes weights."""
    return ",".join(str(int(v)) if float(v).is_integer() else repr(float(v)) for v in values)


def sections(cfg: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]:
    """The model, task and criterion sections of a cfg; a flat legacy ``args`` dict is all three."""
    if not isinstance(cfg.get("model"), Mapping):
        return cfg, cfg, cfg
    return cfg["model"], cfg.get("task") or {}, cfg.get("criterion") or {}


def _lookup(key: str, default: Any, *where: Mapping[str, Any]) -> Any:
    for section in where:
        if section.get(key) is not None:
            return section[key]
    return default


def read_model(cfg: Mapping[str, Any], vocab_size: int | None = None) -> SpeechDLMConfig:
    """The :class:`SpeechDLMConfig` of an original cfg (sections or a flat legacy dict);
    ``decoder_normalize_before`` is ignored (the model is always pre-norm)."""
    model, task, crit = sections(cfg)
    get = lambda key, default=None, *where: _lookup(key, default, *(where or (model,)))  # noqa: E731
    d = SpeechDLMConfig()
    embed_dim = int(get("decoder_embed_dim", d.embed_dim))
    channels = get("channels", None, task)
    weights = parse_floats(str(get("main_and_cross_weights", "1,0", crit, model)))
    max_positions = get("max_target_positions", None, model, task) or get("tokens_per_sample", 1024, model, task)
    return SpeechDLMConfig(
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
        learned_positions=parse_bool(get("decoder_learned_pos", False)),
        max_positions=int(max_positions),
        share_input_output_embed=parse_bool(get("share_decoder_input_output_embed", False)),
        scale_embedding=not parse_bool(get("no_scale_embedding", False)),
        final_layer_norm=not parse_bool(get("no_decoder_final_norm", False)),
        positional_embeddings=not parse_bool(get("no_token_positional_embeddings", False)),
        next_unit_prediction=parse_bool(get("next_unit_prediction", False, task, model)),
        edge_unit_prediction=parse_bool(get("edge_unit_prediction", True, task, model)),
        duration_prediction=parse_bool(get("duration_prediction", False, model, task)),
        delayed_duration_target=parse_bool(get("delayed_duration_target", False, model, task)),
        main_and_cross_weights=(weights[0], weights[1] if len(weights) > 1 else 0.0),
        # the released file's internal criterion names them general/edge_loss_weight
        general_unit_loss_weight=float(get("general_unit_loss_weight", get("general_loss_weight", 0.0, crit), crit)),
        edge_unit_loss_weight=float(get("edge_unit_loss_weight", get("edge_loss_weight", 1.0, crit), crit)),
        duration_loss_weight=float(get("duration_loss_weight", 1.0, crit)),
        checkpoint_activations=parse_bool(get("checkpoint_activations", False)),
    )


def read_task(cfg: Mapping[str, Any]) -> TaskConfig:
    """The :class:`TaskConfig` of an original cfg."""
    task = sections(cfg)[1]
    return TaskConfig(
        tokens_per_sample=int(task.get("tokens_per_sample") or 1024),
        sample_break_mode=str(task.get("sample_break_mode") or "none"),
        max_target_durations=task.get("max_target_durations", 256),
    )


def read_criterion(cfg: Mapping[str, Any], num_channels: int) -> CriterionConfig:
    """The :class:`CriterionConfig` of an original cfg (``channel_weights``: one per channel)."""
    _, task, crit = sections(cfg)
    weights = task.get("channel_weights")
    return CriterionConfig(
        channel_weights=parse_floats(str(weights), num_channels) if weights else None,
        sentence_avg=parse_bool(crit.get("sentence_avg", False)),
    )


def owned_fields(model: SpeechDLMConfig, task: TaskConfig, criterion: CriterionConfig) -> dict[str, dict[str, Any]]:
    """The fields our configurations hold, per section, as the original writes them (target
    flags and weights as strings)."""
    weights = format_floats(model.main_and_cross_weights)
    targets = {  # the original repeats these in the model section
        "duration_prediction": str(model.duration_prediction),
        "delayed_duration_target": str(model.delayed_duration_target),
    }
    return {
        "model": {
            "activation_fn": model.activation_fn,
            "dropout": model.dropout,
            "attention_dropout": model.attention_dropout,
            "activation_dropout": model.activation_dropout,
            "decoder_embed_dim": model.embed_dim,
            "decoder_output_dim": model.output_dim,
            "decoder_input_dim": model.input_dim,
            "decoder_ffn_embed_dim": model.ffn_dim,
            "decoder_layers": model.layers,
            "decoder_cross_layers": model.cross_layers,
            "decoder_attention_heads": model.attention_heads,
            "no_decoder_final_norm": not model.final_layer_norm,
            "no_token_positional_embeddings": not model.positional_embeddings,
            "share_decoder_input_output_embed": model.share_input_output_embed,
            "decoder_learned_pos": model.learned_positions,
            "no_scale_embedding": not model.scale_embedding,
            "checkpoint_activations": model.checkpoint_activations,
            "tokens_per_sample": model.max_positions,
            "max_target_positions": None,
            **targets,
            "main_and_cross_weights": weights,
        },
        "task": {
            "channels": ",".join(model.channels),
            "channel_weights": format_floats(criterion.channel_weights) if criterion.channel_weights else None,
            "sample_break_mode": task.sample_break_mode,
            "tokens_per_sample": task.tokens_per_sample,
            "next_unit_prediction": str(model.next_unit_prediction),
            "edge_unit_prediction": str(model.edge_unit_prediction),
            **targets,
            "max_target_durations": task.max_target_durations,
        },
        "criterion": {
            "sentence_avg": criterion.sentence_avg,
            "main_and_cross_weights": weights,
            "general_unit_loss_weight": model.general_unit_loss_weight,
            "edge_unit_loss_weight": model.edge_unit_loss_weight,
            "duration_loss_weight": model.duration_loss_weight,
        },
    }


def write_sections(
    model: SpeechDLMConfig,
    task: TaskConfig | None = None,
    criterion: CriterionConfig | None = None,
    base: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """The ``model``, ``task`` and ``criterion`` sections. ``task``/``criterion`` default to
    ``base``'s (when given), else to the model's block length and plain sums. Per field: ours,
    else ``base``'s section of the same ``_name``, else the original's default."""
    if task is None:
        task = read_task(base) if base else TaskConfig(tokens_per_sample=model.max_positions)
    if criterion is None:
        criterion = read_criterion(base, model.num_channels) if base else CriterionConfig()
    out = {}
    for name, owned in owned_fields(model, task, criterion).items():
        kept = (base or {}).get(name)
        kept = kept if isinstance(kept, Mapping) and kept.get("_name") == UNOWNED[name]["_name"] else {}
        out[name] = {**UNOWNED[name], **kept, **owned}
    return out


def write_cfg(
    model: SpeechDLMConfig,
    task: TaskConfig | None = None,
    criterion: CriterionConfig | None = None,
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A whole fairseq cfg: the non-model sections (common, dataset, generation, ...) of
    ``base`` or the original's defaults, and :func:`write_sections`."""
    text = resources.files("dgslm").joinpath("assets/fairseq_speech_dlm_cfg.json").read_text()
    cfg = json.loads(text)
    if base is not None:
        cfg.update({k: v for k, v in base.items() if isinstance(v, Mapping) or v is None})
    cfg.update(write_sections(model, task, criterion, base))
    return cfg
