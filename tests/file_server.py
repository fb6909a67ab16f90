"""A local HTTP server for the download tests (no internet): serves a dict of files with Range
support, as the model hosts do, and records each request."""

from __future__ import annotations

import contextlib
import http.server
import re
import threading
from collections.abc import Iterator


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """GET of the server's ``files`` with ``Range: bytes=N-`` (206, or 416 past the end)."""

    def do_GET(self):
        key = self.path.lstrip("/")
        self.server.requests.append((key, self.headers.get("Range")))
        data = self.server.files.get(key)
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


@contextlib.contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler], **attributes) -> Iterator[http.server.HTTPServer]:
    """A threaded server on a free loopback port with ``attributes`` set on it (e.g. ``files``);
    its base address is ``server.url``."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.requests = []
    for name, value in attributes.items():
        setattr(httpd, name, value)
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
