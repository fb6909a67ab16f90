"""``dgslm serve``: an aiohttp server for the talk-to-it page and its WebSocket protocol.

Routes: ``/`` the page, ``/static/...`` its scripts, ``/ws`` the WebSocket (protocol in
docs/live-serve.md). Each connection gets its own engine session (a ``DuplexSession``; sessions
are pooled and ``reset()`` between connections, so models are loaded once per concurrent
session); every per-frame ``step`` runs in a thread executor, so sessions never block the event
loop or each other. A connection that breaks the protocol is closed alone with a close code and
a reason; a failing session never stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from dgslm.live.recorder import SessionRecorder

logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent / "web"
PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024  # larger messages are refused by aiohttp itself (close 1009, no reason text)
MAX_CONTROL_BYTES = 1024
BUSY = 1013  # "try again later" (RFC 6455 registry)
SHUTDOWN = "server shutting down"


class ProtocolError(Exception):
    """A message that breaks the protocol: the connection is closed with ``code`` and this reason."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class ServerConfig:
    """What ``dgslm serve`` was told."""

    host: str = "127.0.0.1"
    port: int = 8000
    record_dir: Path | None = None
    max_sessions: int = 2
    idle_timeout: float = 30.0  # seconds without any message before a session is closed
    user_channel: int = 0  # the person's channel in the recordings (the engine's user channel)


def pcm16_to_float(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """A little-endian 16-bit PCM frame -> (int16 samples, float32 samples in [-1, 1))."""
    pcm = np.frombuffer(data, dtype="<i2").astype(np.int16)
    return pcm, pcm.astype(np.float32) / 32768.0


def float_to_pcm16(wave: np.ndarray) -> np.ndarray:
    """float samples in [-1, 1] -> int16 (clipped)."""
    return np.clip(np.round(np.asarray(wave, dtype=np.float32) * 32767.0), -32768, 32767).astype(np.int16)


def short_reason(text: str) -> str:
    """A close reason fits in 123 bytes (RFC 6455)."""
    data = " ".join(text.split()).encode()
    return data[:123].decode(errors="ignore")


class SessionPool:
    """Engine sessions for the connections, at most ``limit`` in use; idle ones are reused after ``reset()``."""

    def __init__(self, factory: Callable[[], Any], limit: int, ready: list[Any] | None = None):
        self.factory = factory
        self.limit = limit
        self.active = 0
        self._idle: list[Any] = list(ready or [])  # sessions made already, for the first connections

    def reserve(self) -> bool:
        """Count one more session in use, unless the limit is reached (event loop only)."""
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def take(self) -> Any:
        """A fresh session: an idle one or a new one (blocking: run it in the executor)."""
        return self._idle.pop() if self._idle else self.factory()

    def give_back(self, session: Any | None) -> None:
        """Reset ``session`` (if any) for the next connection and release its slot (blocking)."""
        try:
            if session is not None:
                session.reset()
                self._idle.append(session)
        finally:
            self.active -= 1


class Connection:
    """One WebSocket connection: its engine session, its recording and the message loop."""

    def __init__(self, ws: web.WebSocketResponse, session: Any, server: LiveServer):
        self.ws = ws
        self.session = session
        self.server = server
        self.name = f"session-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        self.started = datetime.now(UTC)
        self.recorder = None
        if server.config.record_dir is not None:
            self.recorder = SessionRecorder(
                server.config.record_dir, self.name, session.sample_rate, server.config.user_channel
            )
        self.frame_bytes = 2 * session.frame_samples

    def step(self, data: bytes) -> bytes:
        """One frame through the engine (in the executor); the pair is appended to the recording."""
        person, wave = pcm16_to_float(data)
        model = float_to_pcm16(self.session.step(wave))
        if self.recorder is not None:
            self.recorder.write(person, model)
        return model.tobytes()

    def hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "session": self.name,
            "sample_rate": self.session.sample_rate,
            "frame_samples": self.session.frame_samples,
            "algorithmic_latency_ms": self.session.algorithmic_latency_ms,
            "idle_timeout_s": self.server.config.idle_timeout,
            "user_channel": self.server.config.user_channel,
            "recording": self.recorder is not None,
        }

    def control(self, text: str) -> dict[str, Any] | None:
        """The answer to a control message; None for ``stop``. Raises ProtocolError for a bad one."""
        if len(text.encode()) > MAX_CONTROL_BYTES:
            raise ProtocolError(WSCloseCode.MESSAGE_TOO_BIG, f"control message over {MAX_CONTROL_BYTES} bytes")
        try:
            message = json.loads(text)
        except ValueError:
            raise ProtocolError(
                WSCloseCode.UNSUPPORTED_DATA, "text message is not JSON; audio goes in binary frames"
            ) from None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            return {"type": "pong", "t": message.get("t")}
        if kind == "stats":
            return {"type": "stats", **self.session.stats()}
        if kind == "stop":
            return None
        raise ProtocolError(WSCloseCode.UNSUPPORTED_DATA, f"unknown control message type {str(kind)[:40]!r}")

    async def serve(self) -> tuple[int, str]:
        """Run the message loop; return the close code and reason."""
        loop = asyncio.get_running_loop()
        await self.ws.send_json(self.hello())
        while True:
            try:
                msg = await self.ws.receive(timeout=self.server.config.idle_timeout)
            except TimeoutError:
                return WSCloseCode.GOING_AWAY, f"idle for {self.server.config.idle_timeout:g} s"
            if msg.type == WSMsgType.BINARY:
                if len(msg.data) != self.frame_bytes:
                    raise ProtocolError(
                        WSCloseCode.INVALID_TEXT,
                        f"audio frames are {self.frame_bytes} bytes (16-bit PCM), got {len(msg.data)}",
                    )
                await self.ws.send_bytes(await loop.run_in_executor(self.server.executor, self.step, msg.data))
            elif msg.type == WSMsgType.TEXT:
                answer = self.control(msg.data)
                if answer is None:
                    return WSCloseCode.OK, "stopped"
                await self.ws.send_json(answer)
            elif msg.type == WSMsgType.ERROR:  # aiohttp has already closed it (e.g. 1009 message too big)
                return self.ws.close_code or WSCloseCode.PROTOCOL_ERROR, str(msg.data)
            elif self.server.shutting_down:
                return WSCloseCode.GOING_AWAY, SHUTDOWN
            else:  # the client closed the connection
                return self.ws.close_code or WSCloseCode.OK, "closed by the client"

    def finish(self, code: int, reason: str) -> dict[str, Any]:
        """The session's statistics; the recording is saved (blocking: run it in the executor)."""
        stats = {
            "session": self.name,
            "started": self.started.isoformat(timespec="milliseconds"),
            "ended": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "sample_rate": self.session.sample_rate,
            "user_channel": self.server.config.user_channel,
            "close": {"code": int(code), "reason": reason},
            "engine": self.session.stats(),
        }
        if self.recorder is not None:
            saved = self.recorder.finish(stats)
            if saved is not None:
                logger.info(
                    "recorded %s (%.1f s)",
                    saved,
                    self.recorder.frames * self.session.frame_samples / self.session.sample_rate,
                )
        return stats


class LiveServer:
    """The application: the page, the WebSocket endpoint, the session pool and the executor."""

    def __init__(self, config: ServerConfig, factory: Callable[[], Any], ready: list[Any] | None = None):
        """``factory`` makes a new engine session; ``ready``: sessions made already (reused first)."""
        self.config = config
        self.pool = SessionPool(factory, config.max_sessions, ready)
        self.executor = ThreadPoolExecutor(max_workers=config.max_sessions + 1, thread_name_prefix="dgslm-live")
        self.sockets: set[web.WebSocketResponse] = set()
        self.shutting_down = False
        self.app = web.Application()
        self.app.router.add_get("/", self.index)
        self.app.router.add_get("/ws", self.websocket)
        self.app.router.add_static("/static/", WEB_DIR)
        self.app.on_shutdown.append(self.close_all)
        self.app.on_cleanup.append(self.stop_executor)

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_DIR / "index.html")

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            raise web.HTTPForbidden(text="cross-origin WebSocket connections are refused\n")
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, autoclose=True)
        await ws.prepare(request)
        if not self.pool.reserve():
            logger.info("refused a connection: %d sessions in use", self.pool.active)
            await ws.close(
                code=BUSY, message=f"server busy: {self.pool.limit} sessions at most, try again later".encode()
            )
            return ws
        loop = asyncio.get_running_loop()
        session = connection = None
        code, reason = WSCloseCode.INTERNAL_ERROR, "server error"
        self.sockets.add(ws)
        try:
            session = await loop.run_in_executor(self.executor, self.pool.take)
            connection = Connection(ws, session, self)
            logger.info("%s: started (%d sessions in use)", connection.name, self.pool.active)
            code, reason = await connection.serve()
        except ProtocolError as err:
            code, reason = err.code, str(err)
        except (ConnectionError, asyncio.CancelledError):
            code, reason = WSCloseCode.GOING_AWAY, "connection lost"
        except Exception as err:  # an engine failure ends this session only
            logger.exception("session failed")
            code, reason = WSCloseCode.INTERNAL_ERROR, f"session failed: {err}"
        finally:
            self.sockets.discard(ws)
            reason = short_reason(reason)
            with contextlib.suppress(Exception):
                if connection is not None:
                    stats = await loop.run_in_executor(self.executor, connection.finish, code, reason)
                    if not ws.closed:
                        await ws.send_json({"type": "stats", "final": True, **stats["engine"]})
            try:  # the slot is free before the client sees the close
                await loop.run_in_executor(self.executor, self.pool.give_back, session)
            except Exception:
                logger.exception("could not reset a session")
            with contextlib.suppress(Exception):
                await ws.close(code=code, message=reason.encode())
            logger.info("%s: closed %d %s", getattr(connection, "name", "session"), code, reason)
        return ws

    async def close_all(self, app: web.Application) -> None:
        """On shutdown, close every open session (they are recorded as usual)."""
        self.shutting_down = True
        for ws in list(self.sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=SHUTDOWN.encode())

    async def stop_executor(self, app: web.Application) -> None:
        self.executor.shutdown(wait=True)


async def serve_forever(server: LiveServer, ready: Callable[[str], None] | None = None) -> None:
    """Bind ``server`` to its host and port (0: any free port) and serve until cancelled."""
    runner = web.AppRunner(server.app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, server.config.host, server.config.port)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"
    if ready is not None:
        ready(url)
    try:
        while True:
            await asyncio.sleep(3600)
    finally:
        await runner.cleanup()
