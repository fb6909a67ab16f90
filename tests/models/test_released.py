"""Model file cache and download: offline message, resume, verification (local HTTP server)."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest
from file_server import RangeHandler, serving

from dgslm.cli.main import main
from dgslm.errors import DgslmError
from dgslm.models.released import MODELS, download_models, find_model_files

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
CONTENT = {  # small files of the right kinds: a download must load as what it stands for
    "hubert/hubert_fisher.pt": (REFERENCE / "hubert" / "hubert_small.pt").read_bytes(),
    "hubert/hubert_fisher_km_500.bin": (REFERENCE / "kmeans" / "km50.bin").read_bytes(),
}


@pytest.fixture
def server():
    with serving(RangeHandler, files=dict(CONTENT)) as httpd:
        yield httpd


def test_resume_record_and_verify(server, tmp_path):
    root = tmp_path / "cache"
    big = "hubert/hubert_fisher.pt"
    (root / "hubert").mkdir(parents=True)
    (root / f"{big}.part").write_bytes(CONTENT[big][:1000])  # an interrupted download
    assert find_model_files(root)["hubert"] is None
    paths = download_models(root, ["hubert"], server.url, progress=False)
    assert paths["hubert"]["checkpoint"].read_bytes() == CONTENT[big]
    assert (big, "bytes=1000-") in server.requests  # resumed, not restarted
    assert not (root / f"{big}.part").exists()
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest[big] == {"size": len(CONTENT[big]), "sha256": hashlib.sha256(CONTENT[big]).hexdigest()}
    assert find_model_files(root)["hubert"] == {
        "checkpoint": root / big,
        "kmeans": root / "hubert/hubert_fisher_km_500.bin",
    }
    assert find_model_files(root)["speech_dlm"] is None

    server.requests.clear()
    download_models(root, ["hubert"], server.url, progress=False)
    assert server.requests == []  # verified files are not fetched again

    (root / big).write_bytes(b"x" * len(CONTENT[big]))  # damaged in place: fetched again
    download_models(root, ["hubert"], server.url, progress=False)
    assert (root / big).read_bytes() == CONTENT[big]

    (root / big).unlink()
    server.files[big] = b"y" * 10  # the server now sends something else than recorded
    with pytest.raises(DgslmError, match="does not match the size and SHA-256"):
        download_models(root, ["hubert"], server.url, progress=False)
    assert not (root / big).exists() and not (root / f"{big}.part").exists()


def test_complete_part_file_is_accepted(server, tmp_path):
    key = "hubert/hubert_fisher.pt"
    (tmp_path / "hubert").mkdir()
    (tmp_path / f"{key}.part").write_bytes(CONTENT[key])
    server.files.pop("hubert/hubert_fisher_km_500.bin")
    with pytest.raises(DgslmError, match="HTTP 404"):
        download_models(tmp_path, ["hubert"], server.url, progress=False)
    assert (key, f"bytes={len(CONTENT[key])}-") in server.requests  # answered 416: nothing left to fetch
    assert (tmp_path / key).read_bytes() == CONTENT[key]


def test_unreachable_host_names_urls_and_folder(tmp_path, capsys, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DGSLM_HOME", str(tmp_path / "home"))
    assert main(["download", "--models", "speech_dlm,hifigan", "--base-url", f"http://127.0.0.1:{port}/x/"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("dgslm download: error: cannot download (")
    for name in ("speech_dlm", "hifigan"):
        for file in MODELS[name].files.values():
            assert f"http://127.0.0.1:{port}/x/{name}/{file} -> {tmp_path / 'home' / name / file}" in err
    assert "hubert" not in err
    with pytest.raises(DgslmError, match="unknown model"):
        download_models(tmp_path, ["bert"])
