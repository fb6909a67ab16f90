"""Helpers of the live tests: the demo models' duplex session and a `dgslm serve` server on a real socket."""

from __future__ import annotations

import asyncio
import functools
import tempfile
import threading
import time

from dgslm.live import DuplexSession
from dgslm.live.server import LiveServer, ServerConfig, serve_forever

SEED = 7


@functools.cache
def demo_session() -> DuplexSession:
    """A session on the bundled demo models (an empty cache: never models a user downloaded), seeded."""
    from dgslm.models.resolve import resolve_model_paths

    with tempfile.TemporaryDirectory() as empty:
        paths = resolve_model_paths(cache=empty)
    assert all(source.startswith("demo ") for source in paths.sources.values()), paths.sources
    return DuplexSession.from_pretrained(seed=SEED, device="cpu", paths=paths)


def make_session() -> DuplexSession:
    """A new session on the demo models (loaded once), seeded, without catching up (deterministic)."""
    return demo_session().new_session()


class RunningServer:
    """A LiveServer serving on 127.0.0.1 (any free port) from its own event loop in a thread."""

    def __init__(self, config: ServerConfig):
        self.server = LiveServer(config, make_session)
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def ready(url: str) -> None:
            self.url = url
            started.set()

        self.task = None

        def main() -> None:
            asyncio.set_event_loop(self.loop)
            self.task = self.loop.create_task(serve_forever(self.server, ready))
            try:
                self.loop.run_until_complete(self.task)
            except asyncio.CancelledError:
                pass

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        assert started.wait(120), "the server did not start"
        self.ws_url = self.url.replace("http://", "ws://") + "ws"

    def wait_idle(self, seconds: float = 30.0) -> None:
        """Wait until no session is in use (a client's close returns before the server frees its slot)."""
        deadline = time.monotonic() + seconds
        while self.server.pool.active and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.pool.active == 0, f"{self.server.pool.active} sessions still in use"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(60)
