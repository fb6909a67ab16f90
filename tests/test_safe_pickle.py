"""Every loader of a user-named model or state file refuses a pickle that would run code, and
the code never runs (a payload that would create a marker file leaves no marker)."""

from __future__ import annotations

import os

import joblib
import pytest
import torch

from dgslm.cli.main import main
from dgslm.errors import DgslmError


class _Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "code from a model file ran"


def test_speech_dlm_loaders(tmp_path, marker, reference):
    from dgslm.lm.checkpoint import load_fairseq_checkpoint, load_model
    from dgslm.lm.hub import SpeechDLM

    evil = tmp_path / "evil.pt"
    torch.save({"cfg": _Payload(marker), "model": {}}, evil)
    for load in (load_fairseq_checkpoint, load_model):
        with pytest.raises(DgslmError, match="evil.pt.*forbidden global"):
            load(evil)
    data = reference / "speechdlm" / "checkpoint"
    with pytest.raises(DgslmError, match="evil.pt.*forbidden global"):
        SpeechDLM.from_pretrained(str(tmp_path), checkpoint_file="evil.pt", data_name_or_path=str(data))


def test_hubert_and_kmeans_loaders(tmp_path, marker, reference):
    from dgslm.encoder.hubert_checkpoint import load_hubert
    from dgslm.encoder.kmeans import load_centers
    from dgslm.encoder.unit_encoder import UnitEncoder

    evil_pt, evil_km = tmp_path / "evil.pt", tmp_path / "evil_km.bin"
    torch.save({"cfg": {"model": _Payload(marker)}, "model": {}}, evil_pt)
    joblib.dump({"cluster_centers_": _Payload(marker)}, evil_km)
    with pytest.raises(DgslmError, match="evil.pt.*forbidden global"):
        load_hubert(evil_pt)
    with pytest.raises(DgslmError, match="evil_km.bin.*forbidden global"):
        load_centers(evil_km)
    with pytest.raises(DgslmError, match="evil.pt.*forbidden global"):
        UnitEncoder.from_pretrained(evil_pt, reference / "kmeans" / "km50.bin", layer=3, device="cpu")
    with pytest.raises(DgslmError, match="evil_km.bin.*forbidden global"):
        UnitEncoder.from_pretrained(reference / "hubert" / "hubert_small.pt", evil_km, layer=3, device="cpu")


def test_vocoder_and_training_state_loaders(tmp_path, marker, reference):
    from dgslm.training.checkpointing import load_state
    from dgslm.vocoder import UnitVocoder

    evil = tmp_path / "evil"
    torch.save({"generator": {"w": _Payload(marker)}}, evil)
    with pytest.raises(DgslmError, match="evil.*forbidden global"):
        UnitVocoder.from_pretrained(evil, reference / "vocoder" / "config.json")
    with pytest.raises(DgslmError, match="evil"):  # resume of `dgslm train` / `train-vocoder`
        load_state(evil)


def test_cli_refuses_with_one_line_and_exit_1(tmp_path, marker, reference, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"cfg": _Payload(marker), "model": {}}, evil)
    codes = tmp_path / "in.txt"
    codes.write_text("{'audio': 'a', 'unitA': '7 376', 'unitB': '7 499'}\n")
    data = reference / "speechdlm" / "checkpoint"
    argv = [
        "sample",
        "--in-file",
        str(codes),
        "--out-file",
        str(tmp_path / "out.txt"),
        "--ckpt",
        str(evil),
        "--data",
        str(data),
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("dgslm sample: error:") and "evil.pt" in err and "forbidden global" in err
    assert not (tmp_path / "out.txt").exists()
    assert main(["validate", str(reference / "speechdlm" / "data-bin"), "--path", str(evil)]) == 1
    assert "forbidden global" in capsys.readouterr().err
