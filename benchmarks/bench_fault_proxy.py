"""Benchmark the embedded fault proxy against a direct connection and HAProxy (TCP mode).

    .venv/bin/python benchmarks/bench_fault_proxy.py [--requests 3000] [--megabytes 200]

Everything is loopback and bounded. Three processes carry traffic: the upstream
servers (this script with ``--upstream``), the embedded proxy
(``python -m harness.toxiproxy``, no toxics) and ``haproxy -db``; the client is
this process. Prints one table:

* added latency per request: p50/p99 of 64-byte echo round trips on one
  persistent connection, minus the direct connection's p50;
* bulk throughput (MB/s, 1 MB = 10^6 bytes) of one connection downloading;
* errors among 500 concurrent streaming connections (each receives 20 chunks
  of 200 bytes, 10 ms apart, and must get all 4000 bytes);
* proxy RSS idle and per active connection (500 connections held open).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
HAPROXY = "/usr/sbin/haproxy"
STREAMS = 500
STREAM_CHUNKS, STREAM_CHUNK = 20, 200
START_TIMEOUT_S = 10.0


# -- upstream servers (run in a subprocess) ------------------------------------
async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
    writer.close()


async def _source(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    line = await reader.readline()
    if not line.strip():
        writer.close()
        return
    count = int(line)
    block = b"x" * 262144
    while count > 0:
        writer.write(block[:count])
        count -= min(count, len(block))
        await writer.drain()
    writer.close()


async def _stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        for _ in range(STREAM_CHUNKS):
            writer.write(b"s" * STREAM_CHUNK)
            await writer.drain()
            await asyncio.sleep(0.01)
    writer.close()


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        writer.write(b"h" * 100)
        await reader.read()
    writer.close()


async def _upstream_main() -> None:
    ports = {}
    servers = []
    for name, handler in (("echo", _echo), ("source", _source), ("stream", _stream),
                          ("hold", _hold)):
        server = await asyncio.start_server(handler, "127.0.0.1", 0, backlog=2048)
        ports[name] = server.sockets[0].getsockname()[1]
        servers.append(server)
    print(json.dumps(ports), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF


# -- process helpers -------------------------------------------------------------
def _spawn(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, start_new_session=True)


def _first_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{proc.args!r} exited before it was ready")
    return line.strip()


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {START_TIMEOUT_S}s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def upstream_servers() -> Iterator[dict[str, int]]:
    proc = _spawn([sys.executable, __file__, "--upstream"])
    try:
        yield {k: int(v) for k, v in json.loads(_first_line(proc)).items()}
    finally:
        _stop(proc)


@contextlib.contextmanager
def embedded_proxy(up: dict[str, int]) -> Iterator[tuple[dict[str, int], int]]:
    proc = _spawn([sys.executable, "-m", "harness.toxiproxy", "--port", "0"])
    try:
        url = _first_line(proc).rsplit(" ", 1)[1]
        ports = {}
        with httpx.Client(base_url=url, timeout=5) as api:
            for name, port in up.items():
                body = {"name": name, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{port}"}
                listen = api.post("/proxies", json=body).json()["listen"]
                ports[name] = int(listen.rsplit(":", 1)[1])
        yield ports, proc.pid
    finally:
        _stop(proc)


@contextlib.contextmanager
def haproxy(up: dict[str, int]) -> Iterator[dict[str, int]]:
    ports = {name: _free_port() for name in up}
    sections = ["global\n  maxconn 4000\n",
                "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n"
                "  timeout server 60s\n"]
    for name, port in up.items():
        sections.append(f"listen {name}\n  bind 127.0.0.1:{ports[name]}\n"
                        f"  server s 127.0.0.1:{port}\n")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "haproxy.cfg"
        config.write_text("\n".join(sections))
        proc = _spawn([HAPROXY, "-db", "-f", str(config)])
        try:
            for port in ports.values():
                _wait_port(port)
            yield ports
        finally:
            _stop(proc)


# -- measurements ----------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    path: str
    p50_us: float
    p99_us: float
    mbps: float
    stream_errors: int


def round_trips(ports: dict[str, int], count: int) -> dict[str, list[float]]:
    """Interleave 64-byte echo round trips over one connection per path.

    Interleaving puts every path under the same machine load at the same time
    (on 2 CPUs the drift between runs is larger than the proxy's overhead).
    """
    payload = b"p" * 64
    socks = {}
    for path, port in ports.items():
        socks[path] = socket.create_connection(("127.0.0.1", port))
        socks[path].setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    samples: dict[str, list[float]] = {path: [] for path in ports}
    try:
        for i in range(count + 200):
            for path, sock in socks.items():
                started = time.perf_counter()
                sock.sendall(payload)
                got = 0
                while got < len(payload):
                    got += len(sock.recv(65536))
                if i >= 200:  # warm-up
                    samples[path].append(time.perf_counter() - started)
    finally:
        for sock in socks.values():
            sock.close()
    return samples


def throughput(port: int, total: int) -> float:
    buffer = bytearray(262144)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.perf_counter()
        sock.sendall(b"%d\n" % total)
        got = 0
        while (n := sock.recv_into(buffer)) > 0:
            got += n
        elapsed = time.perf_counter() - started
    if got != total:
        raise RuntimeError(f"received {got} of {total} bytes")
    return total / elapsed / 1e6


async def _one_stream(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data = await asyncio.wait_for(reader.read(-1), 30)
        writer.close()
        return len(data) == STREAM_CHUNKS * STREAM_CHUNK
    except (OSError, TimeoutError):
        return False


async def _streams(port: int) -> int:
    results = await asyncio.gather(*(_one_stream(port) for _ in range(STREAMS)))
    return results.count(False)


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1]


def measure(path: str, ports: dict[str, int], rtts: list[float], megabytes: int) -> Row:
    mbps = max(throughput(ports["source"], megabytes * 1_000_000) for _ in range(2))
    errors = asyncio.run(_streams(ports["stream"]))
    return Row(path, statistics.median(rtts) * 1e6, percentile(rtts, 99) * 1e6, mbps, errors)


async def _hold_open(port: int, count: int, pid: int) -> float:
    writers = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readexactly(100)
        writers.append(writer)
    rss = psutil.Process(pid).memory_info().rss
    for writer in writers:
        writer.close()
    return float(rss)


def memory(port: int, pid: int) -> tuple[float, float]:
    """(idle RSS MiB, KiB per active connection)."""
    idle = psutil.Process(pid).memory_info().rss
    active = asyncio.run(_hold_open(port, STREAMS, pid))
    return idle / 2**20, (active - idle) / STREAMS / 1024


# -- report ------------------------------------------------------------------------
def table(rows: list[Row], rss: tuple[float, float]) -> str:
    direct = rows[0].p50_us
    lines = ["| path | p50 RTT µs | p99 RTT µs | added p50 µs | throughput MB/s "
             f"| errors / {STREAMS} streams |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row.path} | {row.p50_us:.0f} | {row.p99_us:.0f} "
                     f"| {row.p50_us - direct:.0f} | {row.mbps:.0f} | {row.stream_errors} |")
    by_path = {r.path: r for r in rows}
    if "haproxy (tcp)" in by_path and "embedded proxy" in by_path:
        ratio = ((by_path["embedded proxy"].p50_us - direct)
                 / max(by_path["haproxy (tcp)"].p50_us - direct, 1e-9))
        lines.append(f"\nadded latency, embedded / haproxy: {ratio:.2f}x")
    lines.append(f"embedded proxy RSS: idle {rss[0]:.1f} MiB, "
                 f"{rss[1]:.1f} KiB per active connection ({STREAMS} held open)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--upstream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream:
        asyncio.run(_upstream_main())
        return 0
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"{args.requests} round trips, {args.megabytes} MB bulk", flush=True)
    with contextlib.ExitStack() as stack:
        paths = {"direct": stack.enter_context(upstream_servers())}
        paths["embedded proxy"], pid = stack.enter_context(embedded_proxy(paths["direct"]))
        if shutil.which(HAPROXY):
            paths["haproxy (tcp)"] = stack.enter_context(haproxy(paths["direct"]))
        rtts = round_trips({path: ports["echo"] for path, ports in paths.items()}, args.requests)
        rows = [measure(path, ports, rtts[path], args.megabytes)
                for path, ports in paths.items()]
        rss = memory(paths["embedded proxy"]["hold"], pid)
    print(table(rows, rss))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
