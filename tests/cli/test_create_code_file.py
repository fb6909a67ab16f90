"""``dgslm create-code-file``: two `name|units` files to one code file."""

from __future__ import annotations

import pytest

from dgslm.cli.main import main
from dgslm.units.codes import read_code_file


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))


@pytest.mark.parametrize("fmt", ["python", "jsonl"])
def test_merges_channels(tmp_path, fmt):
    write(tmp_path / "c1", ["file_1-channel1|7 376 376", "file_2-channel1|8"])
    write(tmp_path / "c2", ["file_1-channel2|7 499 415", "file_2-channel2|9"])
    out = tmp_path / "sub/codes.txt"
    assert main(["create-code-file", str(tmp_path / "c1"), str(tmp_path / "c2"), str(out), "--format", fmt]) == 0
    expected = [
        {"audio": "file_1", "unitA": "7 376 376", "unitB": "7 499 415"},
        {"audio": "file_2", "unitA": "8", "unitB": "9"},
    ]
    assert read_code_file(out) == expected
    if fmt == "python":
        assert out.read_text().splitlines()[0] == "{'audio': 'file_1', 'unitA': '7 376 376', 'unitB': '7 499 415'}"


def test_channel_names(tmp_path):
    write(tmp_path / "c1", ["a-channel1|1"])
    write(tmp_path / "c2", ["a-channel2|2"])
    argv = ["create-code-file", str(tmp_path / "c1"), str(tmp_path / "c2"), str(tmp_path / "o"), "--channels", "L,R"]
    assert main(argv) == 0
    assert read_code_file(tmp_path / "o") == [{"audio": "a", "L": "1", "R": "2"}]


@pytest.mark.parametrize(
    "c1, c2, where, message",
    [
        (["a-channel1|1 2", "b-channel1|3"], ["a-channel2|1 2", "c-channel2|3"], "c2:2", "does not match"),
        (["a-channel1|1 2"], ["a-channel2|1"], "c2:1", "1 units but"),
        (["a-channel1|1", "b-channel1|2"], ["a-channel2|1"], "c2:2", "has 1 lines"),
        (["a-channel1 1"], ["a-channel2|1"], "c1:1", "expected 'name|units'"),
    ],
)
def test_mismatches_name_file_and_line(tmp_path, capsys, c1, c2, where, message):
    write(tmp_path / "c1", c1)
    write(tmp_path / "c2", c2)
    assert main(["create-code-file", str(tmp_path / "c1"), str(tmp_path / "c2"), str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"dgslm create-code-file: error: {tmp_path}/{where}: ") and message in err
    assert not (tmp_path / "o").exists()
