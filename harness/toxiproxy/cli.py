"""``llm-drill toxiproxy`` / ``python -m harness.toxiproxy``: run the fault proxy.

Flags mirror the real server's ``-host``, ``-port``, ``-config`` and ``-seed``.
The API token, like the real server's, comes from ``TOXIPROXY_AUTH_TOKEN``
(required to bind beyond loopback).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import resource
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.auth import TOXIPROXY_TOKEN_ENV, token_from_env
from harness.errors import ConfigError
from harness.toxiproxy.connection import DEAD_PEER_S
from harness.toxiproxy.httpd import Request
from harness.toxiproxy.proxy import events
from harness.toxiproxy.server import ToxiproxyServer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", "-host", default="127.0.0.1",
                        help="address the API listens on (default 127.0.0.1; any other "
                             "needs TOXIPROXY_AUTH_TOKEN)")
    parser.add_argument("--port", "-port", type=int, default=8474,
                        help="port the API listens on (default 8474; 0 = any free port)")
    parser.add_argument("--config", "-config", type=Path, default=None,
                        help="JSON file of proxies to create at start (like POST /populate)")
    parser.add_argument("--seed", "-seed", type=int, default=None,
                        help="seed for toxicity draws, jitter and slicing")
    parser.add_argument("--dead-peer-s", type=float, default=DEAD_PEER_S,
                        help="end a proxied connection whose upstream leaves data unanswered "
                             "(or keepalive probes, when idle) this long: a partitioned or "
                             f"frozen host (default {DEAD_PEER_S:g}; 0: hold the client as "
                             "the real Toxiproxy does)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``toxiproxy`` subcommand to the ``llm-drill`` CLI."""
    parser = subparsers.add_parser(
        "toxiproxy", help="run the embedded Toxiproxy-compatible fault proxy",
        description=__doc__)
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; returns the process exit code."""
    _raise_fd_limit()
    _print_events()
    try:
        return asyncio.run(_main(args))
    except (OSError, ConfigError) as exc:
        print(f"toxiproxy: cannot start: {exc}", file=sys.stderr)
        return 1


def _print_events() -> None:
    """Each proxy's listener opening and closing, one line each on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    events.addHandler(handler)
    events.setLevel(logging.INFO)
    events.propagate = False


def _raise_fd_limit() -> None:
    """Each proxied connection holds two sockets: use the hard limit on open files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _main(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed) if args.seed is not None else None
    server = ToxiproxyServer(args.host, args.port, rng=rng,
                             token=token_from_env(TOXIPROXY_TOKEN_ENV),
                             dead_peer_s=args.dead_peer_s)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if args.config is not None and not await _populate(server, args.config):
            return 1
        print(f"listening on {server.url}", flush=True)
        await stop.wait()
    finally:
        await server.stop()
    return 0


async def _populate(server: ToxiproxyServer, path: Path) -> bool:
    body = path.read_bytes()
    response = await server.api.handle(Request("POST", "/populate", (), body))
    if response.status >= 300:
        message = json.loads(response.body).get("error", "")
        print(f"toxiproxy: {path}: {message}", file=sys.stderr)
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.toxiproxy", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
