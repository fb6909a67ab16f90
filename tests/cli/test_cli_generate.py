"""`dgslm generate` end to end on the reference models (random weights, original formats)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf

from dgslm.cli.main import main
from dgslm.encoder.unit_encoder import UnitEncoder
from dgslm.units.codes import read_code_file, write_code_file

HOP = 320  # reference vocoder: 5*4*4*2*2 samples per frame
FAST = ["--beam-size", "1", "--seed", "3"]


def model_flags(reference) -> list[str]:
    return [
        "--hubert", str(reference / "hubert" / "hubert_small.pt"), "--km", str(reference / "kmeans" / "km50.bin"),
        "--layer", "3", "--speech-dlm", str(reference / "speechdlm" / "checkpoint" / "speech_dlm_small.pt"),
        "--vocoder", str(reference / "vocoder" / "hifigan_vocoder"),
    ]  # fmt: skip


def generate(reference, *args) -> int:
    return main(["generate", *map(str, args), *model_flags(reference)])


def test_audio_prompt_to_stereo_continuation(reference, tmp_path):
    out, codes = tmp_path / "out.wav", tmp_path / "units.txt"
    prompt = reference / "audio" / "stereo_test.wav"
    rc = generate(reference, prompt, "-o", out, "--prompt-seconds", 0.5, "--seconds", 0.1, "--save-units", codes, *FAST)
    assert rc == 0
    wave, rate = sf.read(out)
    prompt_frames = (8000 - 400) // 320 + 1  # 24 frames in the first 0.5 s
    assert rate == 16000 and wave.shape == ((prompt_frames + 5) * HOP, 2)
    (record,) = read_code_file(codes)
    encoder = UnitEncoder.from_pretrained(
        reference / "hubert" / "hubert_small.pt", reference / "kmeans" / "km50.bin", 3, "cpu"
    )
    expected = encoder.encode(sf.read(prompt, dtype="float32")[0][:8000])
    assert record["audio"] == "out"
    for channel, units in zip(("unitA", "unitB"), expected, strict=True):
        got = record[channel].split()
        assert len(got) == prompt_frames + 5 and got[:prompt_frames] == units.split()


def test_continuation_only_and_several_samples(reference, tmp_path):
    out = tmp_path / "gen.wav"
    prompt = reference / "audio" / "stereo_test.wav"
    assert generate(reference, prompt, "-o", out, "--prompt-seconds", 0.5, "--seconds", 0.2, "--num-samples", 2,
                    "--continuation-only", *FAST) == 0  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen_0.wav", "gen_1.wav"]
    waves = [sf.read(tmp_path / f"gen_{k}.wav")[0] for k in range(2)]
    assert all(w.shape == (10 * HOP, 2) for w in waves)
    assert not np.array_equal(waves[0], waves[1])


def test_units_file_each_line_continued(reference, tmp_path):
    codes = tmp_path / "codes.txt"
    write_code_file(codes, [{"audio": "a", "unitA": "5 5 9 9", "unitB": "7 7 3 3"},
                            {"audio": "b", "unitA": "1 2 3 4 5 6", "unitB": "6 5 4 3 2 1"}])  # fmt: skip
    saved = tmp_path / "saved.txt"
    assert (
        generate(reference, "--units", codes, "-o", tmp_path / "o.wav", "--seconds", 0.1, "--save-units", saved, *FAST)
        == 0
    )
    assert sf.read(tmp_path / "o_0.wav")[0].shape == ((4 + 5) * HOP, 2)
    assert sf.read(tmp_path / "o_1.wav")[0].shape == ((6 + 5) * HOP, 2)
    records = read_code_file(saved)
    assert [r["audio"] for r in records] == ["o_0", "o_1"]
    assert records[1]["unitB"].split()[:6] == ["6", "5", "4", "3", "2", "1"]


def test_a_context_window_continues_past_the_model_positions(reference, tmp_path):
    codes, saved = tmp_path / "codes.txt", tmp_path / "saved.txt"
    write_code_file(codes, [{"audio": "a", "unitA": "5 5 9 9", "unitB": "7 7 3 3"}])
    args = ["--units", codes, "-o", tmp_path / "o.wav", "--seconds", 6, "--save-units", saved, *FAST]
    assert generate(reference, *args, "--context-window", 32) == 0  # 304 frames, the model holds 255
    assert sf.read(tmp_path / "o.wav")[0].shape == ((4 + 300) * HOP, 2)
    assert [len(units.split()) for units in read_code_file(saved)[0].values() if units != "o"] == [304, 304]
    # no flag: the window is the model's training block (its task's tokens_per_sample, 256)
    assert generate(reference, *args) == 0
    default = read_code_file(saved)[0]
    assert generate(reference, *args, "--context-window", 256) == 0
    assert default == read_code_file(saved)[0] and len(default["unitA"].split()) == 304


def test_units_file_errors_name_the_line(reference, tmp_path, capsys):
    codes = tmp_path / "codes.txt"
    write_code_file(codes, [{"unitA": "5 5", "unitB": "7 7"}, {"unitA": "1 2 3", "unitB": "6 5"}])
    assert generate(reference, "--units", codes, "-o", tmp_path / "o.wav", *FAST) == 1
    assert f"{codes}:2: the channels need the same number of units, at least one; got [2, 3]" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.txt"]


@pytest.mark.parametrize(
    "make, args, message",
    [
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage"), [], r"bad\.wav: cannot read audio"),
        (lambda p: sf.write(p, np.zeros(4000), 16000), [], r"bad\.wav: mono prompt: .*--allow-mono"),
        (lambda p: sf.write(p, np.zeros((4000, 2)), 16000), ["--prompt-seconds", 0.02],
         r"bad\.wav: prompt too short: 20\.0 ms"),
        (lambda p: sf.write(p, np.zeros((16000, 2)), 16000), ["--seconds", 5, "--context-window", 0],
         r"bad\.wav: prompt \(49 frames\) \+ continuation \(250 frames\) exceeds the model's 255 frames \(5\.1 s\): "
         r"at most 4\.12 s of continuation after this prompt, or go on with a sliding --context-window"),
        (lambda p: sf.write(p, np.zeros((16000, 2)), 16000), ["--seconds", 5, "--context-window", 300],
         r"error: context window 300 exceeds the model's 256 positions$"),
    ],
)  # fmt: skip
def test_bad_prompts_are_one_line_errors_and_write_nothing(reference, tmp_path, capsys, make, args, message):
    bad = tmp_path / "bad.wav"
    make(bad)
    out = tmp_path / "out" / "o.wav"
    assert generate(reference, bad, "-o", out, *args, "--save-units", tmp_path / "u.txt", *FAST) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dgslm generate: error: ")
    assert re.search(message, err[-1])
    assert not out.parent.exists() and not (tmp_path / "u.txt").exists()


def test_allow_mono_duplicates_the_channel(reference, tmp_path):
    mono = tmp_path / "mono.flac"
    sf.write(mono, sf.read(reference / "audio" / "stereo_test.wav")[0][:8000, 0], 16000)
    units = tmp_path / "u.txt"
    assert (
        generate(
            reference, mono, "-o", tmp_path / "o.wav", "--allow-mono", "--seconds", 0.02, "--save-units", units, *FAST
        )
        == 0
    )
    (record,) = read_code_file(units)
    assert record["unitA"].split()[:24] == record["unitB"].split()[:24]


def test_units_need_only_the_speech_dlm_and_the_vocoder(reference, tmp_path, monkeypatch, capsys):
    """--units never encodes audio: no HuBERT/k-means flags, an empty cache, and no demo are fine."""
    monkeypatch.setenv("DGSLM_HOME", str(tmp_path / "empty-home"))
    codes = tmp_path / "codes.txt"
    write_code_file(codes, [{"audio": "a", "unitA": "5 5 9", "unitB": "7 7 3"}])
    lm = ["--speech-dlm", reference / "speechdlm" / "checkpoint" / "speech_dlm_small.pt"]
    vocoder = ["--vocoder", reference / "vocoder" / "hifigan_vocoder"]
    args = ["generate", "--units", codes, "-o", tmp_path / "o.wav", "--seconds", 0.1, "--no-demo", *FAST]
    assert main([*map(str, args + lm + vocoder)]) == 0
    assert sf.read(tmp_path / "o.wav")[0].shape == ((3 + 5) * HOP, 2)

    assert main([*map(str, args + lm)]) == 1  # only what is missing is listed: the vocoder
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("dgslm generate: error: model files not found: unit HiFi-GAN vocoder. ")
    assert "--models hifigan`" in err and "HuBERT" not in err and "SpeechDLM" not in err


# ---- `dgslm generate --units` is as strict as `dgslm sample` about the prompt's units: a unit that
# is not in the dictionary (a typo, an id of another k-means) stops the run naming file:line, and
# only `<unk>` leaves a position free.


def test_unit_outside_the_dictionary_names_file_and_line(reference, tmp_path, capsys):
    codes = tmp_path / "codes.txt"
    write_code_file(
        codes, [{"audio": "ok", "unitA": "7 8", "unitB": "7 8"}, {"audio": "x", "unitA": "7 8", "unitB": "7 x"}]
    )
    assert generate(reference, "--units", codes, "-o", tmp_path / "o.wav", "--seconds", 0.1, *FAST) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"dgslm generate: error: {codes}:2: unit 'x' is not in the dictionary"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.txt"]


def test_unk_leaves_a_position_free(reference, tmp_path):
    codes, saved = tmp_path / "codes.txt", tmp_path / "saved.txt"
    write_code_file(codes, [{"audio": "a", "unitA": "7 <unk> 8", "unitB": "7 8 8"}])
    assert (
        generate(reference, "--units", codes, "-o", tmp_path / "o.wav", "--seconds", 0.1, "--save-units", saved, *FAST)
        == 0
    )
    (record,) = read_code_file(saved)
    units = record["unitA"].split()
    assert len(units) == 3 + 5 and units[0] == "7" and units[2] == "8" and units[1] != "<unk>"
    assert sf.info(tmp_path / "o.wav").frames == 8 * 320
