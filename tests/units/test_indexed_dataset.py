"""fairseq mmap indexed datasets: read the reference data-bin, write it back byte for byte."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from dgslm.errors import DgslmError
from dgslm.units.dictionary import Dictionary
from dgslm.units.indexed_dataset import IndexedDataset, best_fitting_dtype, write_indexed_dataset
from dgslm.units.unit_files import read_unit_file


@pytest.mark.parametrize("split", ["train", "valid"])
@pytest.mark.parametrize("channel", ["unitA", "unitB"])
def test_reads_reference_and_writes_same_bytes(reference, tmp_path, split, channel):
    speechdlm = reference / "speechdlm"
    dictionary = Dictionary.load(speechdlm / f"data-bin/dict.{channel}.txt")
    lines = read_unit_file(speechdlm / f"raw/{split}.{channel}")
    dataset = IndexedDataset(speechdlm / f"data-bin/{split}.{channel}")
    assert len(dataset) == len(lines) == {"train": 27, "valid": 23}[split]
    for i in (0, len(lines) - 1, len(lines) // 2):
        item = dataset[i]
        assert item.dtype == torch.int64
        assert item.tolist() == dictionary.encode_symbols(lines[i])
    assert int(dataset.sizes.sum()) == {"train": 2274, "valid": 1898}[split]
    assert dataset[-1].tolist() == dataset[len(dataset) - 1].tolist()
    copy = pickle.loads(pickle.dumps(dataset))
    assert len(pickle.dumps(dataset)) < 1000 and copy[3].tolist() == dataset[3].tolist()
    with pytest.raises(IndexError):
        dataset[len(dataset)]

    write_indexed_dataset(tmp_path / "out", list(dataset), len(dictionary))
    for suffix in (".bin", ".idx"):
        expected = (speechdlm / f"data-bin/{split}.{channel}{suffix}").read_bytes()
        assert (tmp_path / f"out{suffix}").read_bytes() == expected
    if split == "valid":
        assert len((tmp_path / "out.idx").read_bytes()) == 302


def test_dtypes_and_empty(tmp_path):
    assert best_fitting_dtype(504) == np.uint16
    assert best_fitting_dtype(70000) == np.uint32
    assert best_fitting_dtype(2**33) == np.int64
    write_indexed_dataset(tmp_path / "big", [[70000, 1], [], [5]], vocab_size=70001)
    dataset = IndexedDataset(tmp_path / "big")
    assert [x.tolist() for x in dataset] == [[70000, 1], [], [5]]
    assert dataset.sizes.tolist() == [2, 0, 1]
    write_indexed_dataset(tmp_path / "empty", [], vocab_size=8)
    assert len(IndexedDataset(tmp_path / "empty")) == 0


def test_bad_files_name_the_file(reference, tmp_path):
    good = (reference / "speechdlm/data-bin/valid.unitA.idx").read_bytes()
    (tmp_path / "x.bin").write_bytes((reference / "speechdlm/data-bin/valid.unitA.bin").read_bytes())
    cases = {
        b"TNTIDX\x00\x00" + good[8:]: "legacy fairseq 'cached'/'lazy' index",
        b"MMIDIDY" + good[7:]: "not a fairseq mmap index",
        good[:20]: "truncated index",
        good[:-3]: "index is 299 bytes",
        good[:17] + b"\x63" + good[18:]: "unknown dtype code 99",
        good[:9] + b"\x02" + good[10:]: "unsupported index version 2",
    }
    for content, message in cases.items():
        (tmp_path / "x.idx").write_bytes(content)
        with pytest.raises(DgslmError, match=message) as info:
            IndexedDataset(tmp_path / "x")
        assert str(info.value).startswith(f"{tmp_path / 'x.idx'}: ")
    (tmp_path / "x.idx").write_bytes(good)
    (tmp_path / "x.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(DgslmError, match="points past the end"):
        IndexedDataset(tmp_path / "x")
    with pytest.raises(DgslmError, match="cannot open"):
        IndexedDataset(tmp_path / "missing")
