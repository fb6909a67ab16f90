"""Shared argument helpers of the subcommands."""

import argparse

import torch

from dgslm.cli.options import add_sampling_arguments, split_names
from dgslm.device import pick_device


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


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    assert pick_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
