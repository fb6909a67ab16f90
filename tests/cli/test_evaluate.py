"""``dgslm evaluate``: tables, JSON, plots, reference comparison, code files and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.image import imread

from dgslm.audio import write_wav
from dgslm.cli.main import main

SR = 16_000


def write_dialogue(path, spans_a, spans_b, seconds=10.0, seed=0):
    """A stereo wav of noise bursts at exactly ``spans`` (seconds, on the 10 ms VAD frame grid)."""
    rng = np.random.default_rng(seed)
    wave = 1e-4 * rng.standard_normal((round(seconds * SR), 2))
    for channel, spans in enumerate((spans_a, spans_b)):
        for start, end in spans:
            wave[round(start * SR) : round(end * SR), channel] = 0.1 * rng.standard_normal(round((end - start) * SR))
    return write_wav(path, wave.astype(np.float32))


@pytest.fixture
def dialogues(tmp_path):
    """Two 10 s dialogues in nested folders. In one: A 1-3 (pause 3-3.5) A 3.5-4, gap, B 4.5-6
    overlapping A 5.5-7; in two: A 1-2, gap, B 2.5-4."""
    folder = tmp_path / "set"
    write_dialogue(folder / "one.wav", [(1, 3), (3.5, 4), (5.5, 7)], [(4.5, 6)])
    write_dialogue(folder / "sub" / "two.wav", [(1, 2)], [(2.5, 4)], seed=1)
    return folder


def evaluate(capsys, *args):
    code = main(["evaluate", "--vad", "energy", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_on_a_folder(capsys, dialogues):
    code, out, _ = evaluate(capsys, dialogues, "--json")
    assert code == 0
    result = json.loads(out)
    assert [d["name"] for d in result["dialogues"]] == ["one", "sub__two"]
    summary = result["summary"]
    assert summary["dialogues"] == 2 and summary["minutes"] == pytest.approx(20 / 60)
    assert {k: summary[k]["count"] for k in ("ipu", "pause", "gap", "overlap")} == {
        "ipu": 6,
        "pause": 1,
        "gap": 2,
        "overlap": 1,
    }
    assert summary["gap"]["seconds_per_minute"] == pytest.approx(1.0 * 3)  # gaps 0.5 + 0.5 s in 1/3 min
    assert summary["overlap"]["per_minute"] == pytest.approx(3.0)
    assert summary["ipu"]["seconds_per_minute"] == pytest.approx(8.0 * 3)  # IPUs of 4 + 1.5 + 1 + 1.5 s
    assert summary["speech_ratio"] == pytest.approx([5.0 / 20, 3.0 / 20])
    assert result["dialogues"][0]["pause"]["mean_seconds"] == pytest.approx(0.5)
    assert result["config"]["vad"] == "energy" and "reference" not in result


def test_table_and_min_silence(capsys, dialogues):
    code, out, _ = evaluate(capsys, dialogues / "one.wav", "--min-silence", "0.6")
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:6]}
    assert rows["Pause"] == ["0.00", "0.00", "-"]  # the 0.5 s pause is bridged into one IPU
    assert rows["Gap"][:2] == ["6.00", "3.00"]  # one 0.5 s gap in 10 s
    assert "speech ratio A / B: 40.0% / 15.0%" in out


def test_plots_are_valid_pngs(capsys, dialogues, tmp_path):
    plots = tmp_path / "plots"
    code, _, _ = evaluate(capsys, dialogues, "--plot-dir", plots, "--max-timelines", "1", "--plot-seconds", "8")
    assert code == 0
    assert sorted(p.name for p in plots.iterdir()) == ["000_one.timeline.png", "histograms.png"]
    for png in plots.iterdir():
        image = imread(png)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 800
        assert image[..., :3].std() > 0.05  # not blank


def test_reference_comparison(capsys, dialogues, tmp_path):
    reference = tmp_path / "ref"
    write_dialogue(reference / "r.wav", [(1, 2), (2.5, 3)], [(4, 5), (5.5, 6.5)], seconds=20)
    code, out, _ = evaluate(capsys, dialogues, "--reference", reference, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["reference"]["gap"]["count"] == 1 and result["reference"]["pause"]["count"] == 2
    comparison = result["comparison"]
    assert comparison["gap"]["per_minute_ratio"] == pytest.approx(6.0 / 3.0)
    assert comparison["gap"]["wasserstein_seconds"] == pytest.approx(0.5)  # 0.5 s gaps vs one 1 s gap
    assert comparison["gap"]["ks_statistic"] == pytest.approx(1.0)
    assert comparison["overlap"]["per_minute_ratio"] is None  # no overlap in the reference
    assert comparison["overlap"]["wasserstein_seconds"] is None
    code, out, _ = evaluate(capsys, dialogues, "--reference", dialogues, "--json")
    same = json.loads(out)["comparison"]
    assert all(same[k]["per_minute_ratio"] == pytest.approx(1.0) for k in ("ipu", "pause", "gap", "overlap"))
    assert all(same[k]["wasserstein_seconds"] == 0.0 and same[k]["ks_statistic"] == 0.0 for k in ("ipu", "gap"))
    code, out, _ = evaluate(capsys, dialogues, "--reference", reference)
    assert "N ratio" in out and "reference: 1 dialogue(s)" in out


def test_code_file_is_vocoded(capsys, reference):
    folder = reference / "vocoder"
    code, out, _ = evaluate(
        capsys,
        folder / "codes.txt",
        "--vocoder",
        folder / "hifigan_vocoder",
        "--vocoder-cfg",
        folder / "config.json",
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert [d["name"] for d in result["dialogues"]] == ["codes__readme_example", "codes__2"]
    # 15 and 40 units per channel, 320 samples per unit
    assert [d["minutes"] for d in result["dialogues"]] == pytest.approx([4800 / SR / 60, 12800 / SR / 60])


@pytest.mark.parametrize("kind", ["mono", "corrupt", "missing", "codes", "empty-folder"])
def test_bad_inputs_give_one_line_errors(capsys, tmp_path, kind):
    path = tmp_path / f"{kind}.wav"
    if kind == "mono":
        write_wav(path, np.zeros(SR, dtype=np.float32))
    elif kind == "corrupt":
        path.write_bytes(b"RIFF\x00\x00not a wav at all")
    elif kind == "codes":
        path = tmp_path / "codes.txt"
        path.write_text("{'unitA': '1 2', 'unitB': '3 4'}\n")
    elif kind == "empty-folder":
        path = tmp_path / "empty"
        path.mkdir()
    code, out, err = evaluate(capsys, path)
    assert code == 1 and out == ""
    lines = [line for line in err.splitlines() if line.startswith("dgslm evaluate: error:")]
    assert len(lines) == 1 and str(path) in lines[0], err


def test_code_file_errors_name_the_file_line(capsys, reference, tmp_path):
    folder = reference / "vocoder"
    path = tmp_path / "codes.txt"
    path.write_text("\n{'unitA': '1 2', 'unitB': '3 4', 'unitC': '5 6'}\n")  # blank line 1, bad line 2
    code, out, err = evaluate(
        capsys, path, "--vocoder", folder / "hifigan_vocoder", "--vocoder-cfg", folder / "config.json"
    )
    assert code == 1 and out == ""
    assert f"{path}:2" in err and "expected 2 unit channels" in err, err
