"""Shared argument helpers of the subcommands."""

import argparse

import torch

from dgslm.cli.options import add_sampling_arguments, split_names
from dgslm.device import pick_device
from dgslm.pipeline.defaults import DIALOGUE_DEFAULTS


def test_split_names_strips_and_drops_blanks():
    assert split_names(" unitA, unitB ,,") == ("unitA", "unitB")
    assert split_names("") == ()


def test_sampling_flags_keep_the_original_defaults():
    parser = argparse.ArgumentParser()
    add_sampling_arguments(parser.add_argument_group("sampling"))
    args = vars(parser.parse_args([]))
    assert args == {"beam_search": False, "beam_size": 5, "sampling_topk": -1, "sampling_topp": -1.0,
                    "temperature": 1.0, "dur_temperature": 1.0, "seed": 123,
                    "lenpen": 1.0, "unkpen": 0.0,  # fairseq's, not exposed by the original script
                    "no_repeat_ngram_size": 0, "unnormalized": False,  # the original hub's, fairseq's defaults
                    "context_window": 0}  # fmt: skip  # ours; 0: off, the original's attention


def test_generate_defaults_replace_only_their_own_flags():
    parser = argparse.ArgumentParser()
    add_sampling_arguments(parser.add_argument_group("sampling"), DIALOGUE_DEFAULTS)
    args = vars(parser.parse_args([]))
    assert {k: args[k] for k in ("beam_size", "temperature", "context_window")} == {
        "beam_size": DIALOGUE_DEFAULTS["beam"],
        "temperature": DIALOGUE_DEFAULTS["temperature"],
        "context_window": None,  # the model's training block length
    }
    assert {k: v for k, v in args.items() if k not in ("beam_size", "temperature", "context_window")} == {
        "beam_search": False, "sampling_topk": -1, "sampling_topp": -1.0, "dur_temperature": 1.0, "seed": 123,
        "lenpen": 1.0, "unkpen": 0.0, "no_repeat_ngram_size": 0, "unnormalized": False,
    }  # fmt: skip
    assert parser.parse_args(["--context-window", "0"]).context_window == 0  # the original's attention


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    assert pick_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
