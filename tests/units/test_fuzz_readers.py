"""Property-based tests: random and mutated input makes the readers raise DgslmError, nothing else."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dgslm.errors import DgslmError
from dgslm.units.codes import read_code_file
from dgslm.units.dictionary import Dictionary
from dgslm.units.indexed_dataset import IndexedDataset, write_indexed_dataset

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """``seed`` with a few random byte replacements, insertions, deletions or a truncation."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            del data[pos:]
    return bytes(data)


def only_dgslm_errors(read, path, content: bytes):
    path.write_bytes(content)
    try:
        read(path)
    except DgslmError as err:
        assert "\n" not in str(err) and str(path) in str(err)


DICT_SEED = b"275 21\n386 21\n<x> 3\na b 2 #fairseq:overwrite\n"
CODE_SEED = b"{'audio': 'f\\'1', 'unitA': '7 376', 'unitB': '7 499'}\n{\"audio\": \"g\", \"unitA\": \"1\"}\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(content=st.one_of(st.binary(max_size=200), mutated(DICT_SEED)))
def test_dictionary_reader(folder, content):
    only_dgslm_errors(Dictionary.load, folder / "dict.txt", content)


@FUZZ
@given(
    content=st.one_of(
        st.binary(max_size=200),
        mutated(CODE_SEED),
        st.text(alphabet="{}[]'\",:\\ux0 \n", max_size=80).map(str.encode),
        st.text(max_size=80).map(str.encode),
    )
)
def test_code_file_reader(folder, content):
    only_dgslm_errors(read_code_file, folder / "codes.txt", content)


@FUZZ
@given(data=st.data())
def test_indexed_dataset_reader(folder, data):
    write_indexed_dataset(folder / "seed", [[4, 5, 2], [7, 2], [2]], vocab_size=504)
    idx = data.draw(st.one_of(st.binary(max_size=80), mutated((folder / "seed.idx").read_bytes())))
    binary = data.draw(
        st.one_of(st.just((folder / "seed.bin").read_bytes()), mutated((folder / "seed.bin").read_bytes()))
    )
    (folder / "x.bin").write_bytes(binary)

    def read(path):
        dataset = IndexedDataset(folder / "x")
        assert [len(item) for item in dataset] == dataset.sizes.tolist()

    only_dgslm_errors(read, folder / "x.idx", idx)
