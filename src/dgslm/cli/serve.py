"""``dgslm serve``: talk to the model in a web browser.

    dgslm serve [--host 127.0.0.1] [--port 8000] [--record-dir DIR] [--max-sessions N]

Serves the page at ``http://HOST:PORT/`` and its WebSocket protocol (docs/live-serve.md); each
connection talks to its own live session of the models (the bundled demo unless the model
flags or the cache say otherwise, found before anything heavy is loaded). ``--port 0`` picks a
free port; the address is printed on standard output once the server listens.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from dgslm.cli.options import add_live_arguments, live_paths, live_session

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    parser.add_argument("--record-dir", type=Path, help="save each session here when it ends: stereo wav + JSON stats")
    parser.add_argument("--max-sessions", type=int, default=2, help="sessions at once; more are refused (default 2)")
    parser.add_argument(
        "--idle-timeout", type=float, default=30.0, help="close a session silent for this many seconds (default 30)"
    )
    parser.add_argument(
        "--no-catch-up", action="store_true",
        help="never skip frames when the engine falls behind (answers then come later and later; default: skip "
             "frames, the model silent in them, to stay in real time)",
    )  # fmt: skip
    add_live_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from dgslm.errors import DgslmError

    if args.max_sessions < 1:
        raise DgslmError(f"--max-sessions must be >= 1, got {args.max_sessions}")
    if args.idle_timeout <= 0:
        raise DgslmError(f"--idle-timeout must be > 0, got {args.idle_timeout}")
    if not 0 <= args.port <= 65535:
        raise DgslmError(f"--port must be in 0..65535, got {args.port}")
    if args.record_dir is not None and args.record_dir.exists() and not args.record_dir.is_dir():
        raise DgslmError("--record-dir is not a folder", args.record_dir)
    paths = live_paths(args)
    # models loaded once: the first session, then new sessions on the same models
    first = live_session(args, paths, catch_up=not args.no_catch_up)

    from dgslm.live.server import LiveServer, ServerConfig, serve_forever

    config = ServerConfig(
        args.host, args.port, args.record_dir, args.max_sessions, args.idle_timeout, args.user_channel
    )
    server = LiveServer(config, first.new_session, ready=[first])

    def ready(url: str) -> None:
        print(f"dgslm serve: listening on {url}", flush=True)
        logger.info("open %s in a browser (Ctrl-C stops)", url)

    try:
        asyncio.run(serve_forever(server, ready))
    except OSError as err:
        raise DgslmError(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}") from None
    except KeyboardInterrupt:
        print("dgslm serve: stopped", file=sys.stderr)
    return 0
