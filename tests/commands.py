"""Running the ``dgslm`` command line (and torchrun) in a child process from tests."""

from __future__ import annotations

import subprocess
import warnings

# gloo's TCP transport can lose a connection on a loaded machine while processes start or
# exit; such a run says nothing about our code, so a test may try it once more.
TRANSPORT_ERRORS = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "Connection refused")


def run_ok(cmd: list[str], *, env: dict | None = None, timeout: float | None = None,
           retry_on_transport_error: bool = False) -> subprocess.CompletedProcess:  # fmt: skip
    """Run ``cmd``; fail the test with the end of its output when it exits non-zero."""
    done = subprocess.run(cmd, env=env, timeout=timeout, capture_output=True, text=True)
    if done.returncode != 0 and retry_on_transport_error and any(e in done.stderr for e in TRANSPORT_ERRORS):
        warnings.warn(f"retrying after a transport error:\n{done.stderr[-2000:]}", stacklevel=2)
        done = subprocess.run(cmd, env=env, timeout=timeout, capture_output=True, text=True)
    command = " ".join(cmd[:8])
    assert done.returncode == 0, (
        f"{command} ... exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-6000:]}"
    )
    return done
