"""`dgslm generate --units` is as strict as `dgslm sample` about the prompt's units: a unit that
is not in the dictionary (a typo, an id of another k-means) stops the run naming file:line, and
only `<unk>` leaves a position free."""

from __future__ import annotations

import soundfile as sf

from dgslm.cli.main import main
from dgslm.units.codes import read_code_file, write_code_file


def generate(reference, *args) -> int:
    models = ["--hubert", reference / "hubert" / "hubert_small.pt", "--km", reference / "kmeans" / "km50.bin",
              "--layer", "3", "--speech-dlm", reference / "speechdlm" / "checkpoint" / "speech_dlm_small.pt",
              "--vocoder", reference / "vocoder" / "hifigan_vocoder", "--beam-size", "1", "--device", "cpu"]  # fmt: skip
    return main(["generate", *map(str, (*args, *models))])


def test_unit_outside_the_dictionary_names_file_and_line(reference, tmp_path, capsys):
    codes = tmp_path / "codes.txt"
    write_code_file(
        codes, [{"audio": "ok", "unitA": "7 8", "unitB": "7 8"}, {"audio": "x", "unitA": "7 8", "unitB": "7 x"}]
    )
    assert generate(reference, "--units", codes, "-o", tmp_path / "o.wav", "--seconds", 0.1) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"dgslm generate: error: {codes}:2: unit 'x' is not in the dictionary"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.txt"]


def test_unk_leaves_a_position_free(reference, tmp_path):
    codes, saved = tmp_path / "codes.txt", tmp_path / "saved.txt"
    write_code_file(codes, [{"audio": "a", "unitA": "7 <unk> 8", "unitB": "7 8 8"}])
    assert generate(reference, "--units", codes, "-o", tmp_path / "o.wav", "--seconds", 0.1, "--save-units", saved) == 0
    (record,) = read_code_file(saved)
    units = record["unitA"].split()
    assert len(units) == 3 + 5 and units[0] == "7" and units[2] == "8" and units[1] != "<unk>"
    assert sf.info(tmp_path / "o.wav").frames == 8 * 320
