"""Truncated or corrupted checkpoint files (zip and legacy torch formats, the vocoder's pickle)
give the project's one-line error naming the file, never another exception."""

from __future__ import annotations

import io

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dgslm.errors import DgslmError
from dgslm.safe_pickle import safe_torch_load


@pytest.fixture(scope="module")
def originals(reference) -> dict[str, bytes]:
    zipped = (reference / "speechdlm" / "checkpoint" / "speech_dlm_small_cross.pt").read_bytes()
    legacy = io.BytesIO()
    torch.save(safe_torch_load(reference / "speechdlm" / "checkpoint" / "speech_dlm_small_cross.pt"), legacy,
               _use_new_zipfile_serialization=False)  # fmt: skip
    vocoder = (reference / "vocoder" / "hifigan_vocoder").read_bytes()
    return {"zip": zipped, "legacy": legacy.getvalue(), "vocoder": vocoder}


@st.composite
def damaged(draw, names=("zip", "legacy", "vocoder")):
    """(which file, a truncation point or None, a few (position, byte) replacements)."""
    name = draw(st.sampled_from(names))
    cut = draw(st.one_of(st.none(), st.floats(0, 1, exclude_max=True)))
    edits = draw(st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=4))
    return name, cut, edits


def apply(blob: bytes, cut, edits) -> bytes:
    data = bytearray(blob)
    for where, value in edits:
        data[int(where * len(data))] = value
    return bytes(data if cut is None else data[: int(cut * len(data))])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=damaged())
def test_damaged_checkpoints_are_one_line_errors(originals, tmp_path_factory, case):
    name, cut, edits = case
    path = tmp_path_factory.getbasetemp() / f"damaged_{name}.pt"
    path.write_bytes(apply(originals[name], cut, edits))
    try:
        safe_torch_load(path)
    except DgslmError as err:
        assert "\n" not in str(err) and str(path) in str(err)


@pytest.mark.parametrize("size", [0, 10, 1000, 50_000, 300_000])
def test_truncated_speech_dlm_checkpoint_via_the_cli(reference, tmp_path, capsys, size):
    from dgslm.cli.main import main

    original = reference / "speechdlm" / "checkpoint" / "speech_dlm_small_cross.pt"
    path = tmp_path / "cut.pt"
    path.write_bytes(original.read_bytes()[:size])
    assert main(["validate", str(reference / "speechdlm" / "data-bin"), "--path", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dgslm validate: error:") and "cut.pt" in err[0]
