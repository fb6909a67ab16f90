"""Fixtures of the live tests: a `dgslm serve` server on a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import RunningServer

from dgslm.live.server import ServerConfig


@pytest.fixture(scope="module")
def record_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sessions")


@pytest.fixture(scope="module")
def live_server(record_dir) -> Iterator[RunningServer]:
    """At most 2 sessions, 3 s idle timeout, every session recorded."""
    running = RunningServer(ServerConfig(port=0, record_dir=record_dir, max_sessions=2, idle_timeout=3.0))
    yield running
    running.stop()


@pytest.fixture
def server(live_server) -> RunningServer:
    """The module's server, with every session of the tests before closed."""
    live_server.wait_idle()
    return live_server
