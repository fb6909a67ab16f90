"""The fairseq dictionary against the reference data-bin dictionaries."""

from __future__ import annotations

import json

import pytest
import torch

from dgslm.errors import DgslmError
from dgslm.units.dictionary import Dictionary


def test_build_from_train_matches_fairseq_bytes(reference, tmp_path):
    built = Dictionary.build([reference / "speechdlm/raw/train.unitA"])
    built.save(tmp_path / "dict.txt")
    assert (tmp_path / "dict.txt").read_bytes() == (reference / "speechdlm/data-bin/dict.unitA.txt").read_bytes()


def test_load_gives_reference_ids(reference):
    dictionary = Dictionary.load(reference / "speechdlm/data-bin/dict.unitA.txt")
    inputs = json.loads((reference / "speechdlm/inputs.json").read_text())
    assert len(dictionary) == 504
    assert (dictionary.bos(), dictionary.pad(), dictionary.eos(), dictionary.unk()) == (0, 1, 2, 3)
    assert dictionary.index("7") == 258
    assert dictionary.symbols[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    for sequence in inputs["sequences"].values():
        for channel, units in sequence["units"].items():
            # what the original fed the model: [eos] + encode_line(units) without its eos
            ids = dictionary.encode_line(units, strict=True)
            assert [dictionary.eos()] + ids[:-1].tolist() == sequence["src_tokens"][channel]
            assert dictionary.string(ids) == units


def test_ordering_count_then_string():
    dictionary = Dictionary.from_counts({"2": 5, "10": 5, "1": 7, "3": 1})
    assert dictionary.symbols[4:8] == ["1", "10", "2", "3"]
    assert len(dictionary) == 8


def test_padding_with_madeupwords(tmp_path):
    dictionary = Dictionary.from_counts({"a": 3, "b": 2, "c": 1})
    assert dictionary.symbols[4:] == ["a", "b", "c", "madeupword0000"]
    assert dictionary.count[-1] == 0
    nine = Dictionary.from_counts({str(i): 1 for i in range(5)})
    assert len(nine) == 16 and nine.symbols[-7:] == [f"madeupword{i:04d}" for i in range(7)]
    dictionary.save(tmp_path / "d.txt")
    assert Dictionary.load(tmp_path / "d.txt") == dictionary
    assert len(Dictionary.from_counts({"a": 3}, padding_factor=1)) == 5


def test_threshold_and_nwords():
    counts = {"a": 5, "b": 3, "c": 1}
    assert Dictionary.from_counts(counts, padding_factor=1, threshold=2).symbols[4:] == ["a", "b"]
    assert Dictionary.from_counts(counts, padding_factor=1, nwords=5).symbols[4:] == ["a"]


def test_encode_and_string():
    dictionary = Dictionary.from_counts({"5": 2, "9": 1}, padding_factor=1)
    ids = dictionary.encode_line("  9\t5   42 ")
    assert ids.dtype == torch.long
    assert ids.tolist() == [5, 4, 3, 2]
    assert dictionary.encode_line("9", append_eos=False).tolist() == [5]
    assert dictionary.string(torch.tensor([2, 5, 4, 3, 1, 0, 2])) == "9 5 <unk>"
    assert dictionary.string([5, 1], keep_pad=True) == "9 <pad>"
    assert "5" in dictionary and "42" not in dictionary
    assert dictionary.index("42") == dictionary.unk()


def test_strict_encode_names_file_and_line():
    dictionary = Dictionary.from_counts({"5": 2})
    assert dictionary.encode_line("5 <unk>", strict=True).tolist() == [4, 3, 2]
    with pytest.raises(DgslmError, match=r"^units\.txt:7: unit '42' is not in the dictionary$"):
        dictionary.encode_line("5 42", strict=True, path="units.txt", line_no=7)


@pytest.mark.parametrize(
    "content, line",
    [("1 5\nfoo\n", 2), ("1 5\n1 6\n", 2), ("1 x\n", 1), ("\n", 1), ("a 1\n<unk> 2\n", 2)],
)
def test_malformed_dictionary_names_line(tmp_path, content, line):
    path = tmp_path / "dict.txt"
    path.write_text(content)
    with pytest.raises(DgslmError) as info:
        Dictionary.load(path)
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert "\n" not in str(info.value)


def test_overwrite_flag_and_non_utf8(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text("a 1\na 4 #fairseq:overwrite\nb c 2\n")
    dictionary = Dictionary.load(path)
    assert dictionary.index("a") == 5 and dictionary.index("b c") == 6
    path.write_bytes(b"a 1\n\xff 2\n")
    with pytest.raises(DgslmError, match=r":2: not UTF-8"):
        Dictionary.load(path)
    with pytest.raises(DgslmError, match="cannot open"):
        Dictionary.load(tmp_path / "missing.txt")
