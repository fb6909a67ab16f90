"""Code files: the original's str(dict) lines and JSON lines, parsed without eval."""

from __future__ import annotations

import pytest

from dgslm.errors import DgslmError
from dgslm.units.codes import format_code_line, parse_python_dict, read_code_file, write_code_file

RECORDS = [
    {"audio": "file_1", "unitA": "7 376 376", "unitB": "7 499 415"},
    {"audio": 'it\'s "quoted" \\ é\t', "unitA": "", "unitB": "1"},
]


@pytest.mark.parametrize("fmt", ["python", "jsonl"])
def test_round_trip(tmp_path, fmt):
    write_code_file(tmp_path / "codes.txt", RECORDS, fmt)
    assert read_code_file(tmp_path / "codes.txt") == RECORDS


def test_python_format_is_str_of_dict():
    line = format_code_line(RECORDS[0], "python")
    assert line == "{'audio': 'file_1', 'unitA': '7 376 376', 'unitB': '7 499 415'}"
    assert format_code_line(RECORDS[0], "jsonl") == '{"audio": "file_1", "unitA": "7 376 376", "unitB": "7 499 415"}'
    for record in RECORDS:
        assert parse_python_dict(str(record)) == record
    with pytest.raises(DgslmError, match="unknown code file format"):
        format_code_line(RECORDS[0], "xml")


def test_variants_accepted():
    assert parse_python_dict(" { 'a' : \"b\" , u'c':'d\\x41', } \n") == {"a": "b", "c": "dA"}
    assert parse_python_dict("{}") == {}


def test_mixed_formats_and_blank_lines(tmp_path):
    path = tmp_path / "codes.txt"
    path.write_text("{'unitA': '1'}\n\n{\"unitA\": \"2\"}\n")
    assert read_code_file(path) == [{"unitA": "1"}, {"unitA": "2"}]


@pytest.mark.parametrize(
    "bad",
    [
        "__import__('os').system('echo hi')",
        "{'unitA': 1}",
        "{'unitA': '1' 'x'}",
        "{'a': '1', 'a': '2'}",
        "{'a': '1'} trailing",
        "['a', 'b']",
        '{"a": 5}',
        "{'a': '1'",
        "{'a' '1'}",
        "{'a': f'{x}'}",
    ],
)
def test_not_a_dict_names_file_and_line(tmp_path, bad):
    path = tmp_path / "codes.txt"
    path.write_text("{'unitA': '1'}\n" + bad + "\n")
    with pytest.raises(DgslmError) as info:
        read_code_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: not a code line")
    assert "\n" not in message
