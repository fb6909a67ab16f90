"""Every GenerationConfig field travels from `dgslm sample`, `dgslm generate` and the Python API
(hub and pipeline) into the config that decoding (``generate_batch``) receives.

Field-driven: a new GenerationConfig field fails here until it has a flag (``cli/options.py``)
and an entry in FLAG_VALUES, and then only if the flag reaches the decoder.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from dgslm.cli.main import main
from dgslm.lm.generate import GenerationConfig
from dgslm.pipeline.defaults import DIALOGUE_DEFAULTS

FIELDS = [field.name for field in dataclasses.fields(GenerationConfig)]

# field -> (its flag, a value that is neither GenerationConfig's default nor the CLI's)
FLAG_VALUES = {
    "max_len_a": (["--max-len-a", "1"], 1),
    "max_len_b": (["--max-len-b", "40"], 40),
    "min_len": (["--min-len", "2"], 2),
    "units_only": (["--units-only"], True),
    "sampling": (["--beam-search"], False),
    "beam": (["--beam-size", "2"], 2),
    "temperature": (["--temperature", "0.9"], 0.9),
    "sampling_topk": (["--sampling-topk", "7"], 7),
    "sampling_topp": (["--sampling-topp", "0.8"], 0.8),
    "duration_temperature": (["--dur-temperature", "1.5"], 1.5),
    "lenpen": (["--lenpen", "0.5"], 0.5),
    "unkpen": (["--unkpen", "2.5"], 2.5),
    "context_window": (["--context-window", "64"], 64),
    "seed": (["--seed", "9"], 9),
    "match_source_len": (["--match-source-len"], True),
    "no_repeat_ngram_size": (["--no-repeat-ngram-size", "3"], 3),
    "unnormalized": (["--unnormalized"], True),
}
# `dgslm generate` has no flag for these: the pipeline sets the length from --seconds, units only
GENERATE_DECIDES = {"max_len_a", "max_len_b", "min_len", "units_only", "match_source_len"}
SECONDS, FRAMES = 0.2, 10
BLOCK = 256  # the reference SpeechDLM's training block length (its task's tokens_per_sample)
# what `dgslm generate` and the pipeline use unless told otherwise, the window resolved
GENERATE_DEFAULTS = GenerationConfig(**{**DIALOGUE_DEFAULTS, "context_window": BLOCK})


class Decoding(Exception):
    """Raised by the recording decoder: the config is all this test needs."""


@pytest.fixture()
def seen(monkeypatch) -> list[GenerationConfig]:
    """The configs that generate_batch receives (it stops the run at its first call)."""
    configs = []

    def record(model, prompts, config, *args, **kwargs):
        configs.append(config)
        raise Decoding

    monkeypatch.setattr("dgslm.lm.hub.generate_batch", record)
    return configs


@pytest.fixture(scope="module")
def pipeline(reference):
    """The reference SpeechDLM and vocoder as a DialoguePipeline (no units encoder)."""
    from dgslm.pipeline.dialogue import DialoguePipeline

    return DialoguePipeline.from_pretrained(
        device="cpu", speech_dlm=reference / "speechdlm" / "checkpoint" / "speech_dlm_small.pt",
        vocoder=reference / "vocoder" / "hifigan_vocoder", models=("speech_dlm", "hifigan"), no_demo=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def prompt(reference) -> dict[str, str]:
    inputs = json.loads((reference / "speechdlm" / "inputs.json").read_text())
    return inputs["sequences"]["seed_example"]["units"]


def _decoded(seen: list[GenerationConfig], *argv) -> GenerationConfig:
    seen.clear()
    with pytest.raises(Decoding):
        main([str(arg) for arg in argv])
    assert len({*seen}) == 1
    return seen[0]


def test_every_field_has_a_flag_and_a_non_default_value():
    assert set(FLAG_VALUES) == set(FIELDS), "a GenerationConfig field without a flag (cli/options.py) or test value"
    default = GenerationConfig()
    for field, (_, value) in FLAG_VALUES.items():
        assert getattr(default, field) != value, field


def _sample_argv(prompt: dict[str, str], reference, tmp_path) -> list:
    (tmp_path / "in.txt").write_text(str({"audio": "a", **prompt}) + "\n")
    folder = reference / "speechdlm" / "checkpoint"
    return ["sample", "--in-file", tmp_path / "in.txt", "--out-file", tmp_path / "out.txt", "--device", "cpu",
            "--ckpt", folder / "speech_dlm_small.pt", "--data", folder]  # fmt: skip


def _generate_argv(prompt: dict[str, str], reference, tmp_path) -> list:
    codes = tmp_path / "codes.txt"
    codes.write_text(str({"audio": "a", **prompt}) + "\n")
    return ["generate", "--units", codes, "-o", tmp_path / "out.wav", "--seconds", SECONDS, "--device", "cpu",
            "--speech-dlm", reference / "speechdlm" / "checkpoint" / "speech_dlm_small.pt",
            "--vocoder", reference / "vocoder" / "hifigan_vocoder", "--no-demo"]  # fmt: skip


@pytest.mark.parametrize("field", FIELDS)
def test_sample_cli_passes_every_field(field, seen, prompt, reference, tmp_path):
    argv = _sample_argv(prompt, reference, tmp_path)
    baseline = _decoded(seen, *argv)
    assert baseline == GenerationConfig(seed=123)  # the original script's defaults
    flags, value = FLAG_VALUES[field]
    assert _decoded(seen, *argv, *flags) == dataclasses.replace(baseline, **{field: value})


@pytest.mark.parametrize("field", FIELDS)
def test_generate_cli_passes_every_field(field, seen, prompt, reference, tmp_path):
    argv = _generate_argv(prompt, reference, tmp_path)
    baseline = _decoded(seen, *argv)
    length = len(prompt["unitA"].split()) + FRAMES
    assert baseline == dataclasses.replace(GENERATE_DEFAULTS, seed=123, max_len_b=length, units_only=True)
    flags, value = FLAG_VALUES[field]
    if field in GENERATE_DECIDES:
        with pytest.raises(SystemExit):  # argparse: unrecognized arguments
            main(["generate", *map(str, argv[1:]), *flags])
        return
    assert _decoded(seen, *argv, *flags) == dataclasses.replace(baseline, **{field: value})


@pytest.mark.parametrize("argv", [_sample_argv, _generate_argv])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int8"])
def test_dtype_flag_reaches_the_decoder(argv, dtype, monkeypatch, prompt, reference, tmp_path):
    """``--dtype`` is a loading option, not a GenerationConfig field: the model that decoding
    receives has that dtype (float32 without the flag)."""
    from dgslm.lm.precision import DTYPES, decoding_dtype

    models = []

    def record(model, *args, **kwargs):
        models.append(decoding_dtype(model))
        raise Decoding

    monkeypatch.setattr("dgslm.lm.hub.generate_batch", record)
    flags = [] if dtype == "float32" else ["--dtype", dtype]
    with pytest.raises(Decoding):
        main([str(arg) for arg in [*argv(prompt, reference, tmp_path), *flags]])
    assert models == [dtype] and dtype in DTYPES


@pytest.mark.parametrize("field", FIELDS)
def test_python_api_passes_every_field_by_name_or_in_a_config(field, seen, prompt, pipeline):
    _, value = FLAG_VALUES[field]
    expected = GenerationConfig(**{field: value})
    for call in (lambda: pipeline.lm.sample(prompt, **{field: value}), lambda: pipeline.lm.sample(prompt, expected)):
        seen.clear()
        with pytest.raises(Decoding):
            call()
        assert seen == [expected]
    if field in {"max_len_a", "max_len_b", "units_only"}:  # the pipeline sets the output length, units only
        return
    fixed = dict(max_len_a=0, max_len_b=len(prompt["unitA"].split()) + FRAMES, units_only=True)
    for call, config in (
        (lambda: pipeline.continue_units(prompt, FRAMES, **{field: value}), GENERATE_DEFAULTS),  # on the defaults
        (lambda: pipeline.continue_from_units(prompt, SECONDS, config=expected), GenerationConfig()),
    ):
        seen.clear()
        with pytest.raises(Decoding):
            call()
        assert seen == [dataclasses.replace(config, **{field: value}, **fixed)]


def test_options_are_validated_when_the_config_is_built_and_unknown_names_refused(pipeline, prompt):
    from dgslm.errors import DgslmError

    with pytest.raises(DgslmError, match="top-k / top-p need sampling"):
        GenerationConfig(sampling=False, sampling_topk=5)
    with pytest.raises(DgslmError, match="temperature must be > 0"):
        dataclasses.replace(GenerationConfig(), temperature=(1.0, 0.0))
    with pytest.raises(TypeError, match="unknown generation option"):
        pipeline.continue_units(prompt, FRAMES, sampling_top_k=5)
