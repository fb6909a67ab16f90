"""``dgslm validate`` reproduces the original's fairseq-validate on the reference checkpoints."""

from __future__ import annotations

import json
import math
import re

import pytest

from dgslm.cli.main import main

CASES = [("speech_dlm_small.pt", "validate.json"), ("speech_dlm_small_cross.pt", "cross_validate.json")]
# the original's un-prefixed losses are rescaled sums (~8x the per-edge value): compare relatively
INFLATED = {"edge_token_loss", "edge_duration_loss", "general_token_loss"}


def run_validate(reference, capsys, checkpoint, *flags):
    root = reference / "speechdlm"
    argv = ["validate", str(root / "data-bin"), "--path", str(root / "checkpoint" / checkpoint), "--max-tokens", "6144"]
    assert main(argv + list(flags)) == 0
    return capsys.readouterr().out


def parse_line(line: str) -> dict[str, str]:
    assert line.startswith("valid on 'valid' subset | ")
    return dict(part.rsplit(" ", 1) for part in line.split(" | ")[1:])


@pytest.mark.parametrize("checkpoint,expected", CASES)
def test_fairseq_compat_reproduces_reference(reference, capsys, checkpoint, expected):
    ref = json.loads((reference / "speechdlm" / expected).read_text())
    out = json.loads(run_validate(reference, capsys, checkpoint, "--json", "--fairseq-compat"))["valid"]
    for key, value in ref["unrounded_metrics"].items():
        if key in INFLATED:
            assert out["metrics"][key] == pytest.approx(value, rel=1e-5), key
        else:
            assert out["metrics"][key] == pytest.approx(value, abs=1e-4), key
    for key, value in ref["raw_sums"].items():
        if key.endswith(("_correct", "_count", "ntokens", "sample_size", "nsentences")):
            assert out["raw_sums"][key] == value, key
        else:
            assert out["raw_sums"][key] == pytest.approx(value, rel=2e-5), key


def test_printed_line_matches_original(reference, capsys):
    lines = (reference / "speechdlm/validate_stdout.txt").read_text().splitlines()
    originals = [parse_line(line) for line in lines if line.startswith("valid on")]
    for (checkpoint, _), original in zip(CASES, originals):
        ours = parse_line(run_validate(reference, capsys, checkpoint, "--fairseq-compat").strip().splitlines()[-1])
        assert set(ours) == set(original)
        for key in original:
            if key in ("edge_token_ppl", "general_token_ppl"):  # 2**(inflated loss): relative
                assert float(ours[key]) == pytest.approx(float(original[key]), rel=1e-4)
            elif key != "wps":  # a speed
                assert ours[key] == original[key], key


def test_correct_mode_drops_leaked_durations(reference, capsys):
    """Without --fairseq-compat a run starting at a block's last position gets no duration
    target (its duration is predicted in the next block); token metrics are unchanged."""
    ref = json.loads((reference / "speechdlm/validate.json").read_text())
    out = json.loads(run_validate(reference, capsys, "speech_dlm_small.pt", "--json"))["valid"]
    sums, metrics = out["raw_sums"], out["metrics"]
    for channel in ("unitA", "unitB"):
        pair = f"[{channel}-{channel}]"
        edges = sum(len(block["target_edge"][channel]) for block in ref["blocks"])
        final = sum(
            block["target_edge_indices"][channel][-1] == len(block["source"][channel]) - 1 for block in ref["blocks"]
        )
        assert sums[f"{pair}edge_duration_count"] == edges - final
        assert metrics[f"{pair}edge_token_loss"] == pytest.approx(
            ref["unrounded_metrics"][f"{pair}edge_token_loss"], abs=1e-4
        )
    mean = (sums["[unitA-unitA]edge_token_loss"] + sums["[unitB-unitB]edge_token_loss"]) / sums["edge_token_count"]
    assert metrics["edge_token_loss"] == pytest.approx(mean / math.log(2))
    assert sums["ntokens"] == 2 * (7 * 256 + 106)  # pads are not counted


def test_missing_checkpoint_is_a_one_line_error(reference, capsys, tmp_path):
    root = reference / "speechdlm"
    code = main(["validate", str(root / "data-bin"), "--path", str(tmp_path / "none.pt")])
    err = capsys.readouterr().err
    assert code == 1 and re.search(r"none\.pt", err) and len(err.strip().splitlines()) == 1
