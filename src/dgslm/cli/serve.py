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
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dgslm.cli.options import add_model_arguments, add_sampling_arguments, model_paths

if TYPE_CHECKING:
    from dgslm.live import DuplexSession

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
    add_session_arguments(parser)


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
    import torch

    # a frame is a few small ops, run by up to --max-sessions threads at once: more torch
    # threads per frame only add synchronisation (and stall badly on a busy machine)
    torch.set_num_threads(1)
    factory = session_factory(args)

    from dgslm.live.server import LiveServer, ServerConfig, serve_forever

    config = ServerConfig(
        args.host, args.port, args.record_dir, args.max_sessions, args.idle_timeout, args.user_channel
    )
    server = LiveServer(config, factory)
    server.pool.give_back(
        server.pool.take() if server.pool.reserve() else None
    )  # load the models now: errors show at once

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


def add_session_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of a live session: the person's channel, sampling, vocoder speakers, model files."""
    parser.add_argument(
        "--user-channel", type=int, choices=(0, 1), default=0,
        help="the person's channel in the model and the recordings (default 0: the model speaks on channel 2)",
    )  # fmt: skip
    parser.add_argument(
        "--no-catch-up", action="store_true",
        help="never skip frames when the engine falls behind (answers then come later and later; default: skip "
             "frames, the model silent in them, to stay in real time)",
    )  # fmt: skip
    add_sampling_arguments(parser.add_argument_group("sampling of the model's channel (beam search cannot run live)"))
    add_model_arguments(parser)


def session_factory(args: argparse.Namespace) -> Callable[[], DuplexSession]:
    """Load the models once; each call makes a new session on them."""
    from dgslm.live import DuplexSession
    from dgslm.lm.generate import GenerationConfig
    from dgslm.pipeline.dialogue import DialoguePipeline

    paths = model_paths(args)
    config = GenerationConfig(
        sampling=not args.beam_search, beam=1, temperature=args.temperature, sampling_topk=args.sampling_topk,
        sampling_topp=args.sampling_topp, duration_temperature=args.dur_temperature,
        context_window=args.context_window,
    )  # fmt: skip
    speakers = (args.channel1_spk, args.channel2_spk)
    pipe = DialoguePipeline.from_pretrained(paths, args.device, speakers)
    return functools.partial(DuplexSession, pipe.encoder, pipe.lm, pipe.vocoder, config, args.seed,
                             args.user_channel, speakers[1 - args.user_channel], catch_up=not args.no_catch_up)  # fmt: skip
