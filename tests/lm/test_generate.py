"""Generation against the original's outputs (generate.json, cross_generate.json, step log-probs)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from dgslm.errors import DgslmError
from dgslm.lm import generate as generate_module
from dgslm.lm.generate import GenerationConfig, batch_seed, generate_batch
from dgslm.lm.hub import SpeechDLM
from dgslm.lm.search import DurationCounter, sample_step, top_p_candidates

pytestmark = pytest.mark.usefixtures("one_thread")

CHECKPOINTS = {
    "generate.json": "speech_dlm_small.pt",
    "cross_generate.json": "speech_dlm_small_cross.pt",
    # all layers cross-channel, learned positions, untied, next + edge + non-delayed duration heads
    "beamdur_generate.json": "speech_dlm_small_beamdur.pt",
}
RUNS = {"generate.json": 12, "cross_generate.json": 8, "beamdur_generate.json": 24}


def _hub(reference, name: str) -> SpeechDLM:
    folder = reference / "speechdlm" / "checkpoint"
    return SpeechDLM.from_pretrained(folder, checkpoint_file=name, data_name_or_path=folder).eval()


@pytest.fixture(scope="module")
def hub(reference) -> SpeechDLM:
    return _hub(reference, CHECKPOINTS["generate.json"])


@pytest.fixture(scope="module")
def cross_hub(reference) -> SpeechDLM:
    return _hub(reference, CHECKPOINTS["cross_generate.json"])


@pytest.fixture(scope="module")
def runs(reference) -> dict[str, dict]:
    return {name: json.loads((reference / "speechdlm" / name).read_text()) for name in CHECKPOINTS}


@pytest.fixture(scope="module")
def prompts(reference) -> dict[str, dict[str, str]]:
    inputs = json.loads((reference / "speechdlm" / "inputs.json").read_text())
    return {name: seq["units"] for name, seq in inputs["sequences"].items()}


def _config(kwargs: dict, **extra) -> GenerationConfig:
    return GenerationConfig(
        max_len_a=kwargs["max_len_a"], max_len_b=kwargs["max_len_b"], sampling=kwargs["sampling"], beam=kwargs["beam"],
        **extra,
    )  # fmt: skip


def _units(hub, **kwargs) -> dict[str, str]:
    return hub.sample(kwargs.pop("prompt"), **kwargs)


@pytest.mark.parametrize("file", list(CHECKPOINTS))
def test_greedy_and_beam_match_the_original(file, reference, runs):
    """Every hypothesis of every greedy and beam run, in the original's order. The beamdur
    runs need the original's non-delayed duration quirk: its "jumped" mask is not reordered
    with the beams."""
    model_hub = _hub(reference, CHECKPOINTS[file])
    checked = 0
    for key, run in runs[file].items():
        if "prompt" not in run:
            continue
        hypos = model_hub.generate([run["prompt"]], _config(run["kwargs"]))[0]
        assert len(hypos) == len(run["hypos"]), key
        for ours, theirs in zip(hypos, run["hypos"]):
            # the original's ids end with eos; ours are the units only
            assert ours.tokens.tolist() == [theirs["tokens"][ch][:-1] for ch in model_hub.channels], key
            assert ours.score == pytest.approx(theirs["score"], abs=1e-4), key
            expected = torch.tensor(theirs["positional_scores"])
            torch.testing.assert_close(ours.positional_scores, expected, atol=1e-4, rtol=0)
        assert model_hub.decode(hypos[0].tokens) == run["sample"], key
        checked += 1
    assert checked == RUNS[file]


def test_prompt_fed_in_small_chunks_gives_the_same_hypotheses(runs, hub, monkeypatch):
    run = runs["generate.json"]["rand50/beam5_b80"]
    monkeypatch.setattr(generate_module, "PREFILL_CHUNK", 4)  # 51 known positions: 13 chunks
    hypos = hub.generate([run["prompt"]], _config(run["kwargs"]))[0]
    assert [h.tokens.tolist() for h in hypos] == [[r["tokens"][ch][:-1] for ch in hub.channels] for r in run["hypos"]]
    assert [h.score for h in hypos] == pytest.approx([r["score"] for r in run["hypos"]], abs=1e-4)


def test_step_log_probs_and_durations_match_the_original(reference, runs, hub, prompts):
    lprobs = np.load(reference / "speechdlm" / "generate_step_lprobs.npz")
    for name, length in (("seed_example", 45), ("rand50", 80), ("rand43", 73)):
        key = f"{name}/greedy_b{length}"
        seen, durations = [], []

        def record(step, lp, dur):
            seen.append(lp[0])
            durations.append(dur[0])

        prompt = hub.encode(prompts[name])[None, :, 1:]
        generate_batch(hub.model, prompt, _config(runs["generate.json"][key]["kwargs"]), hub.dictionary, on_step=record)
        assert len(seen) == length + 1
        for c, channel in enumerate(hub.channels):
            expected = torch.from_numpy(lprobs[f"{name}__greedy_b{length}__step_lprobs__{channel}"])
            ours = torch.stack([lp[c] for lp in seen])
            finite = expected.isfinite()
            assert torch.equal(finite, ours.isfinite())  # pad is -inf (tied embedding, zero pad row)
            torch.testing.assert_close(ours[finite], expected[finite], atol=1e-4, rtol=0)
            raw = torch.tensor(runs["generate.json"][key]["step_raw_duration"][channel])
            torch.testing.assert_close(torch.stack([d[c] for d in durations]), raw, atol=1e-4, rtol=0)


def test_batched_prompts_of_different_lengths_equal_one_by_one(runs, hub, cross_hub):
    batched = runs["generate.json"]["batched/greedy_b80"]
    assert hub.sample(batched["prompts"], **batched["kwargs"]) == batched["sample"]
    kwargs = dict(max_len_b=30, sampling=False, beam=4)
    prompts = [{ch: " ".join(units.split()[:n]) for ch, units in p.items()} for p, n in zip(batched["prompts"], (3, 9))]
    prompts.append({"unitA": "7 7", "unitB": "<unk> <unk>"})
    together = cross_hub.sample(prompts, **kwargs)
    assert together == [cross_hub.sample(p, **kwargs) for p in prompts]
    assert cross_hub.sample(prompts, max_sentences=2, **kwargs) == together


def test_dict_in_dict_out_list_in_list_out(hub, prompts):
    kwargs = dict(max_len_b=20, sampling=False, beam=1)
    single = hub.sample(prompts["rand43"], **kwargs)
    assert isinstance(single, dict) and list(single) == list(hub.channels)
    assert all(len(units.split()) == 20 for units in single.values())
    assert hub.sample([prompts["rand43"]], **kwargs) == [single]


def test_unknown_units_leave_a_channel_free(hub, prompts):
    prompt = {"unitA": prompts["seed_example"]["unitA"], "unitB": " ".join(["xx"] * 15)}
    out = hub.sample(prompt, max_len_b=25, sampling=False, beam=3, unkpen=1e9)
    assert out["unitA"].split()[:15] == prompt["unitA"].split()
    assert "<unk>" not in out["unitB"] and len(out["unitB"].split()) == 25


def test_verbose_logs_source_hypotheses_and_positional_scores(hub, prompts, caplog):
    with caplog.at_level(logging.INFO, logger="dgslm.lm.hub"):
        hub.sample({"unitA": "7", "unitB": "7"}, max_len_b=10, sampling=False, beam=2, verbose=True)
    lines = [r.getMessage().split("\t")[0] for r in caplog.records]
    assert lines == ["S", "H", "P", "H", "P"]


# ---- sampling --------------------------------------------------------------------------


def test_sampling_same_seed_same_output_and_original_rng_parity(hub, prompts):
    kwargs = dict(max_len_b=40, sampling=True, beam=3, temperature=0.8, sampling_topk=10)
    first = hub.sample(prompts["seed_example"], seed=7, **kwargs)
    assert hub.sample(prompts["seed_example"], seed=7, **kwargs) == first
    assert hub.sample(prompts["seed_example"], seed=8, **kwargs) != first
    torch.manual_seed(7)  # the original's way: global seed, then one hidden draw by the data loader
    assert hub.sample(prompts["seed_example"], seed=None, **kwargs) == first


def test_each_batch_samples_from_its_own_seed_whichever_shard_decodes_it(hub, prompts):
    """Batch 0 draws from the seed itself (a run of one batch is the original's), batch i from
    batch_seed(seed, i): a shard of the batches (a torchrun rank's) gives its prompts what the
    whole run gives them."""
    kwargs = dict(max_len_b=40, sampling=True, beam=2, temperature=0.8, seed=7)
    prompt = prompts["seed_example"]
    whole = [hypos[0].tokens.tolist() for hypos in hub.generate([prompt] * 3, max_sentences=1, **kwargs)]
    assert whole[0] == hub.generate(prompt, **kwargs)[0].tokens.tolist()
    assert whole[1] == hub.generate(prompt, **{**kwargs, "seed": batch_seed(7, 1)})[0].tokens.tolist()
    assert whole[1] != whole[0] and whole[2] not in whole[:2]
    assert len({batch_seed(seed, index) for seed in range(4) for index in range(4)}) == 16  # no seed + index
    for rank in (0, 1):
        part = hub.generate([prompt] * 3, max_sentences=1, shard=(rank, 2), **kwargs)
        assert [hypos is not None for hypos in part] == [rank == 0, rank == 1, rank == 0]
        assert [hypos[0].tokens.tolist() for hypos in part if hypos] == whole[rank::2]


def test_top_k_1_tiny_top_p_and_tiny_temperature_are_greedy(hub, prompts):
    prompt = {ch: " ".join(units.split()[:5]) for ch, units in prompts["rand50"].items()}
    greedy = hub.sample(prompt, max_len_b=40, sampling=False, beam=1)
    assert hub.sample(prompt, max_len_b=40, beam=2, sampling_topk=1, seed=1) == greedy
    assert hub.sample(prompt, max_len_b=40, beam=2, sampling_topp=1e-6, seed=1) == greedy
    assert hub.sample(prompt, max_len_b=40, beam=2, temperature=1e-6, seed=1) == greedy
    assert hub.sample(prompt, max_len_b=40, beam=2, seed=1) != greedy


def test_top_k_never_samples_outside_the_k_best():
    generator = torch.Generator().manual_seed(0)
    lprobs = torch.randn(3, 4, 2, 50).log_softmax(-1)
    allowed = lprobs.topk(5, dim=-1).indices
    for step in (0, 1):
        for _ in range(20):
            tokens, scores = sample_step(lprobs, step, 5, -1.0, generator)
            rows = lprobs[:, :1].expand_as(lprobs) if step == 0 else lprobs
            assert (allowed if step else allowed[:, :1]).eq(tokens[..., None]).any(-1).all()
            torch.testing.assert_close(scores, rows.gather(-1, tokens[..., None]).squeeze(-1))


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3], [0.9, 0.04, 0.03, 0.03]])
    kept, index = top_p_candidates(probs, 0.7)
    assert kept.shape == (2, 2)  # widest row keeps 2: 0.5 then 0.3 (0.5 < 0.7, one more)
    assert index[0].tolist() == [1, 3] and kept[0].tolist() == pytest.approx([0.5, 0.3])
    assert index[1, 0] == 0 and kept[1].tolist() == pytest.approx([0.9, 0.0])  # 0.9 alone reaches 0.7
    kept, index = top_p_candidates(probs, 1.0)  # cumulative sums below 1 keep everything
    assert (kept > 0).sum().item() == 8


# ---- durations ---------------------------------------------------------------------------


def _copies(counter: DurationCounter, tokens: list[int], durations: list[float]) -> list[bool]:
    copies = []
    for step, raw in enumerate(durations):
        repeated = torch.tensor([[step > 0 and tokens[step] == tokens[step - 1]]])
        copies.append(bool(counter.update(step, torch.tensor([[raw]]), repeated)))
    return copies


def test_delayed_counter_carries_over_a_forced_edge():
    # inputs: start, 5, 5 (forced), 9 (forced), 9, 9; duration of 5 is 4 and of 9 is 1
    counter = DurationCounter(1, 1, delayed=True, temperature=1.0, device=torch.device("cpu"))
    copies = _copies(counter, [2, 5, 5, 9, 9, 9], [1.0, 4.0, 4.0, 1.0, 1.0, 1.0])
    # 5 asks for 3 copies; the prompt forces 9 after one, yet 9 is still copied twice (spec 5.3)
    assert copies == [False, True, True, True, True, False]


def test_duration_temperature_and_non_delayed_counter():
    counter = DurationCounter(1, 1, delayed=True, temperature=2.0, device=torch.device("cpu"))
    assert _copies(counter, [2, 5, 5, 5], [1.0, 6.0, 6.0, 6.0]) == [False, True, True, False]  # 6 / 2 = 3 frames
    counter = DurationCounter(1, 1, delayed=False, temperature=1.0, device=torch.device("cpu"))
    # the duration read when 5 is emitted (step 0: 3 frames) makes steps 1 and 2 copies
    assert _copies(counter, [2, 5, 5, 5, 7], [3.0, 1.0, 1.0, 1.0, 1.0]) == [False, True, True, False, False]


# ---- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt, kwargs, message",
    [
        ({"unitA": "7 7", "unitB": "7"}, {}, "different lengths"),
        ({"unitA": "7 7"}, {}, "differ from the model"),
        ({"unitA": "7 </s>", "unitB": "7 7"}, {}, "<s> or </s>"),
        ({"unitA": "7", "unitB": "7"}, {"temperature": 0.0}, "temperature"),
        ({"unitA": "7", "unitB": "7"}, {"sampling": False, "sampling_topk": 5}, "need sampling"),
        ({"unitA": "7", "unitB": "7"}, {"max_len_b": 3, "min_len": 5}, "min_len"),
        ({"unitA": " ".join(["7"] * 300), "unitB": " ".join(["7"] * 300)}, {}, "more than the model's 255"),
    ],
)
def test_bad_input_is_a_one_line_error(hub, prompt, kwargs, message):
    with pytest.raises(DgslmError, match=message):
        hub.sample(prompt, max_len_b=kwargs.pop("max_len_b", 10), **kwargs)


def test_too_long_prompts_can_be_skipped_and_short_max_len_truncates(hub, prompts):
    long = {ch: " ".join(["7"] * 300) for ch in hub.channels}
    out = hub.sample([long, prompts["rand43"]], max_len_b=10, skip_invalid_size_inputs=True, sampling=False, beam=1)
    assert out[0] is None
    assert out[1] == {ch: " ".join(units.split()[:10]) for ch, units in prompts["rand43"].items()}


def test_a_batch_over_the_cache_budget_is_decoded_in_passes_with_the_same_outputs(hub, runs):
    batched = runs["generate.json"]["batched/greedy_b80"]
    config = _config(batched["kwargs"])
    one_pass = hub.generate(batched["prompts"], config)
    several = hub.generate(batched["prompts"], config, max_cache_gb=1e-9)  # one prompt per pass
    assert len(several) == len(one_pass) == 3
    for ours, theirs in zip(several, one_pass):
        assert [h.tokens.tolist() for h in ours] == [h.tokens.tolist() for h in theirs]


def test_units_only_never_samples_a_non_unit_symbol(hub, prompts):
    """The original may sample <s> and <unk> (and drops <s> from the string, so a channel comes
    out one unit short); ``units_only`` bans them so every channel has max_len real units."""
    prompt = next(iter(prompts.values()))
    kwargs = dict(max_len_b=200, sampling=True, beam=1, temperature=20.0, seed=3)
    loose = hub.sample([prompt] * 4, **kwargs)
    specials = [t for out in loose for units in out.values() for t in units.split() if not t.isdigit()]
    short = [len(units.split()) for out in loose for units in out.values() if len(units.split()) != 200]
    assert specials or short, "at this temperature the original's search draws <s> or <unk>"
    for out in hub.sample([prompt] * 4, units_only=True, **kwargs):
        for units in out.values():
            assert len(units.split()) == 200 and all(t.isdigit() for t in units.split())


# ---- context window (ours) ---------------------------------------------------------------


def test_context_window_attends_to_the_last_positions_and_outgrows_the_model(hub, prompts):
    """Every step's log-probs and durations equal a cache-free forward over the window's
    positions: the context restarts from its last half whenever it holds ``window`` positions,
    so the output (300 units) is longer than the model's 255 positions."""
    window, length = 16, 300
    seen = []
    config = GenerationConfig(max_len_b=length, sampling=False, beam=1, context_window=window)
    prompt = hub.encode(prompts["rand43"])[None, :, 1:]
    hypo = generate_batch(hub.model, prompt, config, hub.dictionary, on_step=lambda *step: seen.append(step))[0][0]
    assert hypo.tokens.shape[1] == length > hub.cfg.max_positions
    assert hypo.tokens[:, :43].tolist() == prompt[0].tolist()
    tokens = torch.cat([torch.full((2, 1), hub.dictionary.eos()), hypo.tokens], dim=1)[None]
    start = 0
    for step, lprobs, durations in seen:
        if step - start == window:
            start = step + 1 - window // 2
        out = hub.model(tokens[:, :, start : step + 1])
        expected = torch.log_softmax(out.logits[0, :, 0, -1], dim=-1)
        finite = expected.isfinite()
        torch.testing.assert_close(lprobs[0][finite], expected[finite], atol=1e-4, rtol=0)
        torch.testing.assert_close(durations[0], out.durations[0, :, 0, -1], atol=1e-4, rtol=0)
    assert len(seen) == length + 1 and start > hub.cfg.max_positions - window


def test_a_window_that_never_fills_changes_nothing(runs, hub):
    run = runs["generate.json"]["rand50/beam5_b80"]
    plain = hub.generate([run["prompt"]], _config(run["kwargs"]))[0]
    windowed = hub.generate([run["prompt"]], _config(run["kwargs"], context_window=81))[0]
    assert [h.tokens.tolist() for h in windowed] == [h.tokens.tolist() for h in plain]


def test_beam_search_and_sampling_run_past_the_model_with_a_window(hub, prompts):
    long = {ch: " ".join(units.split() * 7) for ch, units in prompts["rand43"].items()}  # 301 units
    for kwargs in (dict(sampling=False, beam=3), dict(sampling=True, beam=2, seed=5)):
        out = hub.sample(long, max_len_b=400, context_window=64, units_only=True, **kwargs)
        assert all(units.split()[:301] == long[ch].split() and len(units.split()) == 400 for ch, units in out.items())


@pytest.mark.parametrize(
    "window, message", [(1, ">= 2 positions"), (-3, ">= 2 positions"), (300, "exceeds the model's 256")]
)
def test_bad_context_windows_are_one_line_errors(hub, window, message):
    with pytest.raises(DgslmError, match=message):
        hub.sample({"unitA": "7", "unitB": "7"}, max_len_b=10, context_window=window)
