"""Where results go as they are made: a JSONL file and a Prometheus exporter.

:class:`JsonlSink` appends one JSON object per request with a single
``write(2)`` on an ``O_APPEND`` descriptor, so a line is never interleaved or
half-written by another writer. :class:`LoadExporter` keeps the client-side
metrics of ``docs/CONTRACTS.md`` in its own ``CollectorRegistry``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from harness.errors import PortInUse
from harness.load.result import ErrorType, RequestResult, result_from_json

LATENCY_BUCKETS = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0,
                   1.5, 2.0, 3.0, 5.0, 7.5, 10.0)


class JsonlSink:
    """Append each result as one line of ``path`` (created with its parents)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def record(self, result: RequestResult) -> None:
        line = (result.to_json() + "\n").encode()
        written = os.write(self._fd, line)
        if written != len(line):
            raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def read_jsonl(path: Path) -> Iterator[RequestResult]:
    """Read results back from a JSONL file written by :class:`JsonlSink`."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield result_from_json(line)


class LoadExporter:
    """Client-side Prometheus metrics; ``serve(port)`` exposes them on 127.0.0.1."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.ttft = Histogram("llmdrill_client_ttft_seconds", "Client-side time to first token",
                              buckets=LATENCY_BUCKETS, registry=self.registry)
        self.tpot = Histogram("llmdrill_client_tpot_seconds", "Client-side time per output token",
                              buckets=LATENCY_BUCKETS, registry=self.registry)
        self.requests = Counter("llmdrill_client_requests", "Finished requests",
                                registry=self.registry)
        self.errors = Counter("llmdrill_client_errors", "Failed requests by error type",
                              ["type"], registry=self.registry)
        for kind in ErrorType:
            self.errors.labels(type=kind.value)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def record(self, result: RequestResult) -> None:
        self.requests.inc()
        if result.error is not None:
            self.errors.labels(type=result.error.kind.value).inc()
        if result.ok and result.ttft_s is not None:
            self.ttft.observe(result.ttft_s)
        if result.ok and (tpot := result.tpot_s) is not None:
            self.tpot.observe(tpot)

    def serve(self, port: int, host: str = "127.0.0.1") -> LoadExporter:
        """Serve ``/metrics`` on ``host:port`` in a daemon thread."""
        try:
            self._server, self._thread = start_http_server(port, addr=host,
                                                           registry=self.registry)
        except OSError as exc:
            raise PortInUse(port, "loadgen", str(exc)) from exc
        return self

    @property
    def port(self) -> int | None:
        return None if self._server is None else int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LoadExporter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def default_exporter_port() -> int:
    """The load exporter port the topology names (``load_exporter.port``)."""
    from harness.topology import load_topology

    return load_topology().load_exporter.port
