"""``dgslm download`` against a local server: what it fetched must load as the expected kind,
no https-to-http redirect, an oversized ``.part`` is discarded. No internet."""

from __future__ import annotations

import http.server
import json
import os
import re
import threading

import pytest

from dgslm.errors import DgslmError
from dgslm.models.released import download_models, open_url


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves the server's ``files`` with Range support (416 past the end)."""

    def do_GET(self):
        data = self.server.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match.group(1)) if match else 0
        if match and start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.end_headers()
            return
        self.send_response(206 if match else 200)
        if match:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server(reference):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.files = {
        "hifigan/hifigan_vocoder": os.urandom(4096),  # random bytes where a vocoder should be
        "hifigan/config.json": (reference / "vocoder" / "config.json").read_bytes(),
    }
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(httpd) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/"


def test_random_bytes_are_not_recorded_as_a_vocoder(server, tmp_path):
    with pytest.raises(DgslmError, match="is not what hifigan/hifigan_vocoder must be") as err:
        download_models(tmp_path, ["hifigan"], _url(server), progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "hifigan" / "hifigan_vocoder").exists()
    assert not (tmp_path / "hifigan" / "hifigan_vocoder.part").exists()
    manifest = tmp_path / "manifest.json"
    assert not manifest.exists() or "hifigan/hifigan_vocoder" not in json.loads(manifest.read_text())


def test_real_vocoder_is_recorded(server, reference, tmp_path):
    server.files["hifigan/hifigan_vocoder"] = (reference / "vocoder" / "hifigan_vocoder").read_bytes()
    paths = download_models(tmp_path, ["hifigan"], _url(server), progress=False)
    assert paths["hifigan"]["checkpoint"].read_bytes() == server.files["hifigan/hifigan_vocoder"]
    assert "hifigan/hifigan_vocoder" in json.loads((tmp_path / "manifest.json").read_text())


def test_oversized_part_is_discarded(server, reference, tmp_path):
    server.files["hifigan/hifigan_vocoder"] = (reference / "vocoder" / "hifigan_vocoder").read_bytes()
    (tmp_path / "hifigan").mkdir()
    part = tmp_path / "hifigan" / "hifigan_vocoder.part"
    part.write_bytes(b"z" * (len(server.files["hifigan/hifigan_vocoder"]) + 100))
    download_models(tmp_path, ["hifigan"], _url(server), progress=False)
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

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    httpd.location = "http://127.0.0.1:9/evil"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setattr(http.client, "HTTPSConnection", http.client.HTTPConnection)  # no TLS on the test server
    try:
        with pytest.raises(OSError, match="refusing a redirect from https to http://127.0.0.1:9/evil"):
            open_url(f"https://127.0.0.1:{httpd.server_address[1]}/file")
    finally:
        httpd.shutdown()
        httpd.server_close()
