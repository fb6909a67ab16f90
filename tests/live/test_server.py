"""`dgslm serve` over a real socket: the page, the WebSocket protocol, bad messages, the session
limit, sessions at once, idle timeout and the --record-dir output, with the demo models' engine."""

from __future__ import annotations

import asyncio
import json
import socket

import aiohttp
import numpy as np
import pytest
import soundfile as sf
from live_server import RunningServer, make_session

from dgslm.cli.main import main
from dgslm.live.server import MAX_CONTROL_BYTES, MAX_MESSAGE_BYTES, ServerConfig, float_to_pcm16

FRAME = 320


def person_frames(frames: int, seed: int) -> np.ndarray:
    """``[frames, 320]`` int16: bursts of modulated noise and silence, as a talking person."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames * FRAME) / 16000
    bursts = (np.sin(2 * np.pi * 0.7 * t + seed) > 0).astype(np.float32)
    wave = 0.2 * rng.standard_normal(t.size) * bursts * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    return float_to_pcm16(wave).reshape(frames, FRAME)


def engine_answers(frames: np.ndarray) -> np.ndarray:
    """What a fresh engine session says to ``frames`` (as the server converts them)."""
    session = make_session()
    return np.stack([float_to_pcm16(session.step(f.astype(np.float32) / 32768.0)) for f in frames])


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


async def converse(url: str, frames: np.ndarray, stop: bool = True) -> tuple[dict, np.ndarray, list[dict], tuple]:
    """Send ``frames`` one by one (each answer awaited); return hello, the answers, the control
    answers (pong, stats, the final stats) and the close (code, reason)."""
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        hello = await ws.receive_json()
        answers = []
        for frame in frames:
            await ws.send_bytes(frame.astype("<i2").tobytes())
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            answers.append(np.frombuffer(msg.data, "<i2"))
        control = []
        for message in ({"type": "ping", "t": 12.5}, {"type": "stats"}):
            await ws.send_str(json.dumps(message))
            control.append(await ws.receive_json())
        if stop:
            await ws.send_str(json.dumps({"type": "stop"}))
            control.append(await ws.receive_json())
        msg = await ws.receive()
        assert msg.type == aiohttp.WSMsgType.CLOSE, msg
        return hello, np.stack(answers) if answers else np.zeros((0, FRAME)), control, (msg.data, msg.extra)


async def closed_by(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
    """Wait for the server's close frame: (code, reason)."""
    while True:
        msg = await ws.receive()
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return msg.data if msg.type == aiohttp.WSMsgType.CLOSE else ws.close_code, msg.extra or ""
        assert msg.type == aiohttp.WSMsgType.TEXT, msg  # only the final stats may come first


def test_page_and_scripts_are_served(server):
    async def fetch():
        async with aiohttp.ClientSession() as http:
            pages = {}
            for path in ("", "static/app.js", "static/worklet.js"):
                async with http.get(server.url + path) as response:
                    pages[path] = (response.status, response.content_type, await response.text())
            async with http.get(server.url + "static/../server.py") as response:
                pages["escape"] = response.status
            return pages

    pages = run(fetch())
    assert pages[""][:2] == (200, "text/html") and 'id="start"' in pages[""][2] and "<canvas" in pages[""][2]
    assert pages["static/app.js"][:2] == (200, "application/javascript") and "WebSocket" in pages["static/app.js"][2]
    assert pages["static/worklet.js"][0] == 200 and "registerProcessor" in pages["static/worklet.js"][2]
    assert pages["escape"] == 404


def test_protocol_round_trip_and_recording(server, record_dir):
    frames = person_frames(60, seed=1)
    before = set(record_dir.glob("*.wav"))
    hello, answers, control, close = run(converse(server.ws_url, frames))

    assert hello["type"] == "hello" and hello["protocol"] == 1 and hello["recording"] is True
    assert (hello["sample_rate"], hello["frame_samples"]) == (16000, FRAME)
    assert hello["algorithmic_latency_ms"] == make_session().algorithmic_latency_ms
    # one answer per frame, in order: exactly what the engine says to the same audio
    np.testing.assert_array_equal(answers, engine_answers(frames))
    pong, stats, final = control
    assert pong == {"type": "pong", "t": 12.5}
    assert stats["type"] == "stats" and stats["frames"] == 60 and "compute_ms_p95" in stats
    assert final["final"] is True and final["frames"] == 60
    assert close == (1000, "stopped")

    (wav,) = set(record_dir.glob("*.wav")) - before
    audio, rate = sf.read(wav, dtype="int16")
    assert rate == 16000 and audio.shape == (60 * FRAME, 2)
    np.testing.assert_array_equal(audio[:, 0], frames.reshape(-1))  # the person, as sent
    np.testing.assert_array_equal(audio[:, 1], answers.reshape(-1))  # the model, as answered
    report = json.loads(wav.with_suffix(".json").read_text())
    assert report["session"] == wav.stem and report["user_channel"] == 0
    assert report["close"] == {"code": 1000, "reason": "stopped"} and report["engine"]["frames"] == 60
    assert not list(record_dir.glob(".*"))  # no temporary file left


def test_two_sessions_at_once_are_independent(server):
    inputs = [person_frames(40, seed=2), person_frames(40, seed=3)]

    async def both():
        return await asyncio.gather(*(converse(server.ws_url, frames) for frames in inputs))

    results = run(both())
    for frames, (_, answers, _, close) in zip(inputs, results):
        np.testing.assert_array_equal(answers, engine_answers(frames))
        assert close == (1000, "stopped")


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        (b"\0" * 100, 1007, "audio frames are 640 bytes (16-bit PCM), got 100"),
        (b"\0" * 642, 1007, "audio frames are 640 bytes (16-bit PCM), got 642"),
        ("hello", 1003, "text message is not JSON; audio goes in binary frames"),
        ('{"type": "dance"}', 1003, "unknown control message type 'dance'"),
        ("[1, 2]", 1003, "unknown control message type 'None'"),
        (json.dumps({"type": "stats", "pad": "x" * MAX_CONTROL_BYTES}), 1009, "control message over 1024 bytes"),
        (b"\0" * (MAX_MESSAGE_BYTES + 1), 1009, ""),  # refused by aiohttp while reading: no reason text
    ],
    ids=["short-frame", "long-frame", "text-not-json", "unknown-control", "not-an-object", "long-control", "huge"],
)
def test_a_bad_message_closes_only_its_connection(server, message, code, reason):
    frames = person_frames(3, seed=4)

    async def scenario():
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(server.ws_url) as good, http.ws_connect(server.ws_url) as bad:
                await good.receive_json()
                await bad.receive_json()
                await good.send_bytes(frames[0].tobytes())
                first = await good.receive_bytes()
                await bad.send_bytes(bad.send_bytes and message) if isinstance(message, bytes) else await bad.send_str(
                    message
                )
                closed = await closed_by(bad)
                for frame in frames[1:]:  # the other session goes on
                    await good.send_bytes(frame.tobytes())
                    assert len(await good.receive_bytes()) == 2 * FRAME
                await good.send_str('{"type": "stats"}')
                stats = await good.receive_json()
                return first, closed, stats

    first, closed, stats = run(scenario())
    assert len(first) == 2 * FRAME
    assert closed == (code, reason)
    assert stats["frames"] == 3


def test_sessions_past_the_limit_are_refused(server):
    async def scenario():
        async with aiohttp.ClientSession() as http:
            one = await http.ws_connect(server.ws_url)
            two = await http.ws_connect(server.ws_url)
            await one.receive_json()
            await two.receive_json()
            async with http.ws_connect(server.ws_url) as third:
                refused = await closed_by(third)
            await one.send_str('{"type": "stop"}')
            await closed_by(one)
            async with http.ws_connect(server.ws_url) as fourth:  # a slot is free again
                hello = await fourth.receive_json()
            await two.close()
            return refused, hello

    refused, hello = run(scenario())
    assert refused == (1013, "server busy: 2 sessions at most, try again later")
    assert hello["type"] == "hello"


def test_an_idle_session_times_out(server):
    async def scenario():
        async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:
            await ws.receive_json()
            return await closed_by(ws)

    assert run(scenario()) == (1001, "idle for 3 s")


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--max-sessions", "0"], "--max-sessions must be >= 1, got 0"),
        (["--idle-timeout", "0"], "--idle-timeout must be > 0, got 0.0"),
        (["--port", "70000"], "--port must be in 0..65535, got 70000"),
        (["--beam-search"], "--beam-search cannot run live"),
        (["--threads", "0"], "--threads must be >= 1, got 0"),
    ],
)
def test_serve_refuses_bad_flags(flags, error, capsys):
    assert main(["serve", *flags]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("dgslm serve: error: ") and error in err and "\n" not in err


def test_serve_says_when_the_port_is_taken(capsys, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--record-dir", str(tmp_path)]) == 1
    assert f"dgslm serve: error: cannot listen on 127.0.0.1:{port}: " in capsys.readouterr().err


def test_pages_of_other_origins_cannot_connect(server):
    async def attempt(origin):
        async with aiohttp.ClientSession() as http:
            try:
                async with http.ws_connect(server.ws_url, headers={"Origin": origin}) as ws:
                    return (await ws.receive_json())["type"]
            except aiohttp.WSServerHandshakeError as err:
                return err.status

    assert run(attempt("http://evil.example")) == 403
    assert run(attempt(server.url.rstrip("/"))) == "hello"  # the page's own origin


def test_stopping_the_server_closes_and_records_open_sessions(tmp_path):
    running = RunningServer(ServerConfig(port=0, record_dir=tmp_path, max_sessions=1))
    frames = person_frames(10, seed=5)

    async def scenario():
        async with aiohttp.ClientSession() as http, http.ws_connect(running.ws_url) as ws:
            await ws.receive_json()
            for frame in frames:
                await ws.send_bytes(frame.tobytes())
                await ws.receive_bytes()
            await asyncio.get_running_loop().run_in_executor(None, running.stop)
            return await closed_by(ws)

    assert run(scenario()) == (1001, "server shutting down")
    (wav,) = tmp_path.glob("*.wav")
    np.testing.assert_array_equal(sf.read(wav, dtype="int16")[0][:, 0], frames.reshape(-1))
    assert json.loads(wav.with_suffix(".json").read_text())["close"] == {"code": 1001, "reason": "server shutting down"}
