"""The page in a real browser: Debian's chromium (headless, driven by Playwright, never a
downloaded browser) with a fake microphone playing a wav made here talks to `dgslm serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dgslm.corpus.voices import available_voices, synthesize

CHROMIUM = "/usr/bin/chromium"
FRAME = 320
TURN = "hello there, how are you doing today? I was thinking about the weather"


def microphone_wav(path: Path) -> np.ndarray:
    """A 4 s turn (espeak-ng) and 3 s of silence for the model to answer in, 16 kHz mono: what
    the fake microphone plays, in a loop."""
    wave = np.concatenate([0.5 * synthesize(available_voices()[0], TURN), np.zeros(3 * 16000, np.float32)])
    sf.write(path, wave, 16000, subtype="PCM_16")
    return sf.read(path, dtype="float32")[0]


def envelope(wave: np.ndarray) -> np.ndarray:
    """Log10 of the energy per 20 ms frame (-4.5: -45 dBFS)."""
    frames = wave[: len(wave) // FRAME * FRAME].reshape(-1, FRAME)
    return np.log10((frames**2).mean(axis=1) + 1e-8)


def best_correlation(recorded: np.ndarray, source: np.ndarray) -> float:
    """The highest correlation of the recorded envelope with the looped source's, over all shifts."""
    rec, src = envelope(recorded), envelope(source)
    looped = np.tile(src, len(rec) // len(src) + 2)
    return max(np.corrcoef(rec, looped[shift : shift + len(rec)])[0, 1] for shift in range(len(src)))


def start_server(record_dir: Path, home: Path) -> tuple[subprocess.Popen, str]:
    """`dgslm serve` (the demo models: an empty cache ``home``) on any free port of 127.0.0.1;
    returns the process and its URL."""
    process = subprocess.Popen(
        # --seed 7: the demo model answers the microphone's turns in the pauses (offline check);
        # --no-catch-up: on a busy machine the answers come late rather than skipped (silent)
        [
            sys.executable,
            "-m",
            "dgslm",
            "serve",
            "--port",
            "0",
            "--record-dir",
            str(record_dir),
            "--seed",
            "7",
            "--no-catch-up",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "DGSLM_HOME": str(home)},
    )
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        pytest.fail(f"dgslm serve did not start: {line}{process.stderr.read()[-4000:]}")
    return process, line.split("listening on", 1)[1].strip()


TIMELINE_PIXELS = """() => {
  const canvas = document.getElementById("timeline");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const counts = { person: 0, model: 0 };
  for (let i = 0; i < data.length; i += 4) {
    const y = Math.floor(i / 4 / canvas.width);
    if (y < canvas.height / 2 && data[i] === 0x1e && data[i + 1] === 0x88 && data[i + 2] === 0xe5) counts.person++;
    if (y >= canvas.height / 2 && data[i] === 0xe6 && data[i + 1] === 0x51 && data[i + 2] === 0x00) counts.model++;
  }
  return counts;
}"""


def test_talking_to_the_page_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), "Debian's chromium is needed (apt-get install chromium; .ci/run does)"
    source = microphone_wav(tmp_path / "microphone.wav")
    record_dir = tmp_path / "sessions"
    server, url = start_server(record_dir, tmp_path / "empty-cache")
    errors: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-audio-capture={tmp_path / 'microphone.wav'}",
                ],
            )  # fmt: skip
            page = browser.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url)
            page.click("#start")
            # talk until the model has spoken for 0.4 s (it answers in the microphone's pauses)
            page.wait_for_function("dgslmLive.modelActive >= 20 && dgslmLive.personActive >= 100", timeout=90_000)
            page.click("#stop")
            # the server answers every frame sent before Stop (late on a busy machine), then closes
            page.wait_for_function("window.dgslmLive.closeCode !== null", timeout=180_000)
            live = page.evaluate(
                "({code: dgslmLive.closeCode, reason: dgslmLive.closeReason, rtt: dgslmLive.roundTripMs})"
            )
            pixels = page.evaluate(TIMELINE_PIXELS)
            browser.close()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    assert errors == [], errors
    assert (live["code"], live["reason"]) == (1000, "stopped") and live["rtt"] > 0
    assert pixels["person"] > 100 and pixels["model"] > 100, pixels  # both lanes drawn

    (wav,) = record_dir.glob("*.wav")
    session, rate = sf.read(wav, dtype="float32")
    assert rate == 16000 and session.shape[0] >= 120 * FRAME
    heard = best_correlation(session[:, 0], source)
    assert heard > 0.8, heard  # the fake microphone's speech, on the person's channel
    spoken = int((envelope(session[:, 1]) > -4.5).sum())  # frames louder than -45 dBFS
    assert spoken >= 20, spoken  # the model spoke (0.4 s at least)
