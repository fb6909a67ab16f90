"""The original hub's remaining options and names: ``generate`` called as the original calls it
(hypothesis dicts), ``unnormalized``, ``match_source_len`` and ``no_repeat_ngram_size``,
against the reference runs (generate.json) and fairseq's own n-gram rule."""

from __future__ import annotations

import json
import math

import pytest
import torch

from dgslm.errors import DgslmError
from dgslm.lm.generate import GenerationConfig
from dgslm.lm.hub import SpeechDLM
from dgslm.lm.search import block_repeated_ngrams

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def hub(reference) -> SpeechDLM:
    folder = reference / "speechdlm" / "checkpoint"
    return SpeechDLM.from_pretrained(folder, checkpoint_file="speech_dlm_small.pt", data_name_or_path=folder).eval()


@pytest.fixture(scope="module")
def runs(reference) -> dict[str, dict]:
    return json.loads((reference / "speechdlm" / "generate.json").read_text())


def test_generate_called_as_the_original_returns_its_hypothesis_dicts(hub, runs):
    run = runs["seed_example/beam5_b45"]
    kwargs = {k: v for k, v in run["kwargs"].items() if k != "beam"}
    tokenized = {ch: hub.dictionary.encode_line(run["prompt"][ch]) for ch in hub.channels}  # ids + eos
    for prompt in (tokenized, hub.encode(run["prompt"]), run["prompt"]):
        hypos = hub.generate(prompt, 5, **kwargs)  # a single prompt, the positional beam
        assert len(hypos) == len(run["hypos"])
        for ours, theirs in zip(hypos, run["hypos"]):
            assert {ch: t.tolist() for ch, t in ours["tokens"].items()} == theirs["tokens"]
            assert isinstance(ours["score"], torch.Tensor)
            assert float(ours["score"]) == pytest.approx(theirs["score"], abs=1e-4)
            torch.testing.assert_close(ours["positional_scores"], torch.tensor(theirs["positional_scores"]),
                                       atol=1e-4, rtol=0)  # fmt: skip
    assert [h["tokens"]["unitA"].tolist() for h in hub.generate([tokenized], beam=5, **kwargs)[0]] == [
        h["tokens"]["unitA"] for h in run["hypos"]
    ]
    with pytest.raises(KeyError):
        hypos[0]["attention"]


def test_unnormalized_scores_are_the_summed_log_probs(hub, runs):
    run = runs["seed_example/beam5_b45"]
    hypos = hub.generate([run["prompt"]], GenerationConfig(max_len_b=45, sampling=False, beam=5, unnormalized=True))[0]
    for ours, theirs in zip(hypos, run["hypos"]):
        assert ours.score == pytest.approx(theirs["score"] * (45 + 1), abs=1e-3)
        assert ours.score == pytest.approx(sum(map(sum, theirs["positional_scores"])), abs=1e-3)
    assert hub.sample(run["prompt"], max_len_b=45, sampling=False, beam=5, unnormalized=True) == run["sample"]


def test_match_source_len_outputs_as_many_units_as_the_longest_prompt(hub, runs):
    prompts = [runs["seed_example/greedy_b30"]["prompt"], runs["rand50/greedy_b80"]["prompt"]]
    out = hub.sample(prompts, sampling=False, beam=1, max_len_b=500, match_source_len=True)
    assert out[1] == prompts[1] and all(len(o["unitA"].split()) == 50 for o in out)
    greedy_b50 = hub.sample(prompts[0], sampling=False, beam=1, max_len_b=50)
    assert out[0] == greedy_b50  # the shorter prompt continues to the batch's length
    alone = hub.sample(prompts[0], sampling=False, beam=1, match_source_len=True)
    assert alone == prompts[0]


def fairseq_no_repeat_ngram(tokens: list[int], lprobs: torch.Tensor, n: int) -> torch.Tensor:
    """fairseq's NGramRepeatBlock._no_repeat_ngram for one hypothesis (tokens[: step + 1])."""
    lprobs = lprobs.clone()
    step = len(tokens) - 1
    banned = []
    if step + 2 - n >= 0:
        last = tokens[-(n - 1) :]
        banned = [tokens[i + n - 1] for i in range(step + 2 - n) if last == tokens[i : i + n - 1]]
    lprobs[torch.tensor(banned, dtype=torch.int64)] = -math.inf
    return lprobs


def test_ngram_blocking_is_fairseqs_rule_per_channel():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        n, width = int(torch.randint(2, 5, (1,), generator=g)), int(torch.randint(1, 15, (1,), generator=g))
        tokens, lprobs = torch.randint(0, 4, (3, 2, width), generator=g), torch.randn(3, 2, 6, generator=g)
        free = torch.rand(3, 2, generator=g) > 0.3
        ours = block_repeated_ngrams(lprobs, tokens, n, free)
        for row in range(3):
            for c in range(2):
                expected = fairseq_no_repeat_ngram(tokens[row, c].tolist(), lprobs[row, c], n)
                assert torch.equal(ours[row, c], expected if free[row, c] else lprobs[row, c])


def test_no_repeat_ngram_size_in_generation(reference, runs):
    """On the cross model (non-delayed durations, which leaves more free choices): free choices (a new unit: never a forced copy, and past the prompt) never complete a
    bigram seen before in their channel, the start symbol included; the plain greedy run does."""
    folder = reference / "speechdlm" / "checkpoint"
    hub = SpeechDLM.from_pretrained(folder, checkpoint_file="speech_dlm_small_cross.pt", data_name_or_path=folder)
    prompt = runs["seed_example/greedy_b45"]["prompt"]
    plen = len(prompt["unitA"].split())

    def repeats(units: dict[str, str]) -> int:
        count = 0
        for channel in hub.channels:
            ids = [hub.dictionary.eos()] + [hub.dicts[channel].index(u) for u in units[channel].split()]
            for t in range(plen, len(ids) - 1):
                if ids[t + 1] != ids[t] and (ids[t], ids[t + 1]) in set(zip(ids[:t], ids[1 : t + 1])):
                    count += 1
        return count

    plain = hub.sample(prompt, sampling=False, beam=1, max_len_b=80)
    blocked = hub.sample(prompt, sampling=False, beam=1, max_len_b=80, no_repeat_ngram_size=2)
    assert repeats(plain) > 0 and repeats(blocked) == 0
    assert blocked != plain and len(blocked["unitA"].split()) == 80
    assert hub.sample(prompt, sampling=False, beam=1, max_len_b=80, no_repeat_ngram_size=1) == plain  # fairseq: off
    with pytest.raises(DgslmError, match="no_repeat_ngram_size must be >= 0"):
        GenerationConfig(no_repeat_ngram_size=-1)


def test_from_pretrained_is_in_eval_mode_as_the_original(hub):
    assert not hub.model.training
