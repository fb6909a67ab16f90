"""Per-channel unit files: parallel checks name the file and the line."""

from __future__ import annotations

import pytest

from dgslm.errors import DgslmError
from dgslm.units.unit_files import check_parallel, iter_named_lines, read_unit_file, write_unit_file


def test_reference_channels_are_parallel(reference):
    raw = reference / "speechdlm/raw"
    assert check_parallel([raw / "train.unitA", raw / "train.unitB"]) == 27
    assert check_parallel([raw / "valid.unitA", raw / "valid.unitB"]) == 23


def test_round_trip(tmp_path):
    write_unit_file(tmp_path / "a.txt", [["1", "2"], "3  4 5", []])
    assert read_unit_file(tmp_path / "a.txt") == [["1", "2"], ["3", "4", "5"], []]


def test_different_line_counts(tmp_path):
    write_unit_file(tmp_path / "a", ["1 2", "3"])
    write_unit_file(tmp_path / "b", ["1 2"])
    with pytest.raises(DgslmError, match=rf"^{tmp_path / 'b'}:2: has 1 lines but {tmp_path / 'a'} has more$"):
        check_parallel([tmp_path / "a", tmp_path / "b"])


def test_different_line_lengths(tmp_path):
    write_unit_file(tmp_path / "a", ["1 2", "3 4 5", "6"])
    write_unit_file(tmp_path / "b", ["1 2", "3 4", "6"])
    with pytest.raises(DgslmError, match=rf"^{tmp_path / 'b'}:2: 2 units but .* has 3 on this line$"):
        check_parallel([tmp_path / "a", tmp_path / "b"])


def test_named_lines(tmp_path):
    write_unit_file(tmp_path / "a", ["x-channel1|1 2", "no bar here"])
    write_unit_file(tmp_path / "b", ["x-channel2|3 4", "y|5"])
    rows = iter_named_lines([tmp_path / "a", tmp_path / "b"])
    assert next(rows) == (1, [("x-channel1", "1 2"), ("x-channel2", "3 4")])
    with pytest.raises(DgslmError, match=rf"^{tmp_path / 'a'}:2: expected 'name\|units'$"):
        next(rows)
