"""``dgslm download`` against a local server: what it fetched must load as the expected kind,
no https-to-http redirect, an oversized ``.part`` is discarded. No internet."""

from __future__ import annotations

import http.server
import json
import os

import pytest
from file_server import RangeHandler, serving

from dgslm.errors import DgslmError
from dgslm.models.released import download_models, open_url


@pytest.fixture
def server(reference):
    files = {
        "hifigan/hifigan_vocoder": os.urandom(4096),  # random bytes where a vocoder should be
        "hifigan/config.json": (reference / "vocoder" / "config.json").read_bytes(),
    }
    with serving(RangeHandler, files=files) as httpd:
        yield httpd


def test_random_bytes_are_not_recorded_as_a_vocoder(server, tmp_path):
    with pytest.raises(DgslmError, match="is not what hifigan/hifigan_vocoder must be") as err:
        download_models(tmp_path, ["hifigan"], server.url, progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "hifigan" / "hifigan_vocoder").exists()
    assert not (tmp_path / "hifigan" / "hifigan_vocoder.part").exists()
    manifest = tmp_path / "manifest.json"
    assert not manifest.exists() or "hifigan/hifigan_vocoder" not in json.loads(manifest.read_text())


def test_real_vocoder_is_recorded(server, reference, tmp_path):
    server.files["hifigan/hifigan_vocoder"] = (reference / "vocoder" / "hifigan_vocoder").read_bytes()
    paths = download_models(tmp_path, ["hifigan"], server.url, progress=False)
    assert paths["hifigan"]["checkpoint"].read_bytes() == server.files["hifigan/hifigan_vocoder"]
    assert "hifigan/hifigan_vocoder" in json.loads((tmp_path / "manifest.json").read_text())


def test_oversized_part_is_discarded(server, reference, tmp_path):
    server.files["hifigan/hifigan_vocoder"] = (reference / "vocoder" / "hifigan_vocoder").read_bytes()
    (tmp_path / "hifigan").mkdir()
    part = tmp_path / "hifigan" / "hifigan_vocoder.part"
    part.write_bytes(b"z" * (len(server.files["hifigan/hifigan_vocoder"]) + 100))
    download_models(tmp_path, ["hifigan"], server.url, progress=False)
    assert (tmp_path / "hifigan" / "hifigan_vocoder").read_bytes() == server.files["hifigan/hifigan_vocoder"]
    assert not part.exists()


class _Redirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", self.server.location)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_https_to_http_redirect_is_refused(monkeypatch):
    """A redirect from an https URL to plain http is refused (the https leg is simulated by a
    plain server whose URL open_url is told is https)."""
    import http.client

    monkeypatch.setattr(http.client, "HTTPSConnection", http.client.HTTPConnection)  # no TLS on the test server
    with serving(_Redirect, location="http://127.0.0.1:9/evil") as httpd:
        with pytest.raises(OSError, match="refusing a redirect from https to http://127.0.0.1:9/evil"):
            open_url(f"https://127.0.0.1:{httpd.server_address[1]}/file")
