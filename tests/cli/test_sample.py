"""``dgslm sample`` end to end on the reference checkpoint."""

from __future__ import annotations

import json
import os

import pytest

from dgslm.cli.main import main
from dgslm.units.codes import read_code_file

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def setup(reference, tmp_path, monkeypatch):
    """A tmp cwd with the README prompt; returns the flags naming the reference model."""
    monkeypatch.chdir(tmp_path)
    inputs = json.loads((reference / "speechdlm" / "inputs.json").read_text())
    prompt = inputs["sequences"]["seed_example"]["units"]
    (tmp_path / "in.txt").write_text(str({"audio": "file_1", **prompt}) + "\n\n")
    folder = reference / "speechdlm" / "checkpoint"
    return ["--ckpt", str(folder / "speech_dlm_small.pt"), "--data", str(folder), "--max-len-b", "30"]


def test_beam_search_to_a_bare_file_name_matches_the_original(setup, reference):
    code = main(["sample", "--in-file", "in.txt", "--out-file", "out.txt", "--beam-search", *setup])
    assert code == 0
    runs = json.loads((reference / "speechdlm" / "generate.json").read_text())
    expected = {"audio": "file_1-generated", **runs["seed_example/beam5_b30"]["sample"]}
    assert open("out.txt").read() == str(expected) + "\n"


def test_our_model_folder_needs_no_data_flag(setup, reference, tmp_path):
    from dgslm.lm.checkpoint import save_pretrained
    from dgslm.lm.hub import SpeechDLM

    folder = reference / "speechdlm" / "checkpoint"
    hub = SpeechDLM.from_pretrained(folder, checkpoint_file="speech_dlm_small.pt", data_name_or_path=folder)
    save_pretrained(tmp_path / "model", hub.model, hub.dicts)
    args = ["sample", "--in-file", "in.txt", "--ckpt", "model", "--max-len-b", "30", "--beam-search"]
    assert main([*args, "--out-file", "out.txt", "--device", "cpu"]) == 0
    runs = json.loads((reference / "speechdlm" / "generate.json").read_text())
    assert read_code_file("out.txt")[0] == {"audio": "file_1-generated", **runs["seed_example/beam5_b30"]["sample"]}


def test_sampling_is_seeded_and_jsonl_in_and_out(setup, tmp_path):
    record = read_code_file("in.txt")[0]
    (tmp_path / "in.jsonl").write_text(json.dumps(record) + "\n" + json.dumps({**record, "audio": "b"}) + "\n")
    args = ["sample", "--in-file", "in.jsonl", "--format", "jsonl", "--sampling-topk", "20", *setup]
    assert main([*args, "--out-file", "a/out.jsonl"]) == 0
    assert main([*args, "--out-file", "b/out.jsonl"]) == 0
    lines = (tmp_path / "a" / "out.jsonl").read_text().splitlines()
    assert lines == (tmp_path / "b" / "out.jsonl").read_text().splitlines()
    out = [json.loads(line) for line in lines]
    assert [r["audio"] for r in out] == ["file_1-generated", "b-generated"]
    for r in out:
        assert all(len(r[ch].split()) == 30 and r[ch].split()[:15] == record[ch].split() for ch in ("unitA", "unitB"))


def test_prefix_size_and_skip_invalid_size_batch(setup, tmp_path):
    long = {"audio": "long", "unitA": " ".join(["7"] * 20), "unitB": " ".join(["7"] * 20)}
    with open("in.txt", "a") as handle:
        handle.write(str(long) + "\n")
    args = ["sample", "--in-file", "in.txt", "--out-file", "out.txt", "--beam-search", *setup]
    assert main([*args, "--batch-max-positions", "16"]) == 1  # the 20-unit prompt is too long
    assert not (tmp_path / "out.txt").exists()
    assert main([*args, "--batch-max-positions", "16", "--skip-invalid-size-batch"]) == 0
    assert [r["audio"] for r in read_code_file("out.txt")] == ["file_1-generated"]
    assert main([*args, "--prefix-size", "3"]) == 0
    out = read_code_file("out.txt")
    assert [r["unitA"].split()[:3] for r in out] == [["7", "376", "376"], ["7", "7", "7"]]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{'audio': 'x', 'unitA': '7 7', 'unitB': '7'}", "in.txt:3: prompt channels have different lengths"),
        ("{'audio': 'x', 'unitA': '7 zz', 'unitB': '7 7'}", "in.txt:3: unit 'zz' is not in the dictionary"),
        ("{'audio': 'x', 'unitA': '7 7'}", "in.txt:3: missing unitB"),
        ("{'audio': 'x', 'unitA': '" + " ".join(["7"] * 300) + "', 'unitB': '" + " ".join(["7"] * 300) + "'}",
         "in.txt:3: prompt of 300 units: longer than 255"),
        ("not a dict", "in.txt:3: not a code line"),
    ],
)  # fmt: skip
def test_bad_lines_are_one_line_errors_and_nothing_is_written(setup, capsys, line, message):
    with open("in.txt", "a") as handle:
        handle.write(line + "\n")
    assert main(["sample", "--in-file", "in.txt", "--out-file", "out.txt", *setup]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dgslm sample: error: ") and message in err[-1]
    assert not os.path.exists("out.txt")


def test_empty_input_file_and_unknown_channels(setup, capsys):
    open("empty.txt", "w").close()
    assert main(["sample", "--in-file", "empty.txt", "--out-file", "out.txt", *setup]) == 1
    assert "empty.txt: no prompts in the file" in capsys.readouterr().err
    assert main(["sample", "--in-file", "in.txt", "--out-file", "out.txt", "--channels", "unitA,unitX", *setup]) == 1
    assert "missing unitX" in capsys.readouterr().err


def test_context_window_outgrows_the_model_and_a_too_large_one_is_refused(setup, capsys):
    args = ["sample", "--in-file", "in.txt", "--out-file", "out.txt", "--beam-size", "1", *setup, "--max-len-b", "300"]
    assert main([*args, "--context-window", "300"]) == 1
    assert capsys.readouterr().err.splitlines()[-1].endswith("context window 300 exceeds the model's 256 positions")
    assert not os.path.exists("out.txt")
    assert main([*args, "--context-window", "64"]) == 0
    (out,) = read_code_file("out.txt")
    assert [len(out[ch].split()) for ch in ("unitA", "unitB")] == [300, 300]
