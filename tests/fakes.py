"""Fakes shared by the unit tests: the one fake clock, a scripted Prometheus, metrics sources."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.clients.metrics import MetricsSnapshot, parse_metrics

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "metrics"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


class FakeClock:
    """The tests' one clock (a :class:`harness.clock.Clock`): time moves only when told
    (``advance``) or slept on, instantly; ``slept`` records every sleep asked for."""

    def __init__(self, start: float = 1_000.0, wall_offset: float = 1.7e9) -> None:
        self.t = start
        self.wall_offset = wall_offset
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t + self.wall_offset

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += max(0.0, seconds)

    async def sleep_async(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)  # let ready tasks read the time before it moves
        self.t += max(0.0, seconds)


def ok(data: object) -> httpx.Response:
    return httpx.Response(200, json={"status": "success", "data": data})


def alert_json(name: str, state: str, **labels: str) -> dict[str, object]:
    return {"labels": {"alertname": name, **labels}, "annotations": {"summary": "s"},
            "state": state, "activeAt": "2024-01-01T00:00:00.5Z", "value": "1e+00"}


def rules_json(*names: str, evaluated: str = "") -> dict[str, object]:
    rules = [{"name": n, "type": "alerting", "query": "up == 0", "duration": 2,
              "health": "ok", "lastEvaluation": evaluated} for n in names]
    return {"groups": [{"name": "g", "rules": rules}]}


@dataclass
class FakePrometheus:
    """Answers the Prometheus API from scripted values; each alerts() call pops one state."""

    rule_names: tuple[str, ...] = ("NodeDown", "CircuitOpen", "GatewayBackendDown")
    evaluated: str = ""  # the rules' lastEvaluation (RFC 3339), "" before the first
    alert_script: list[list[dict[str, object]]] = field(default_factory=list)
    vector: list[dict[str, object]] = field(default_factory=list)
    matrix: list[dict[str, object]] = field(default_factory=list)
    #: range answers by a fragment of the query (first match); others get ``matrix``
    matrix_for: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    notifications: list[dict[str, object]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route: dict[str, Callable[[], httpx.Response]] = {
            "/api/v1/rules": lambda: ok(rules_json(*self.rule_names,
                                                          evaluated=self.evaluated)),
            "/api/v1/alerts": self._alerts,
            "/api/v1/query": lambda: ok({"resultType": "vector", "result": self.vector}),
            "/api/v1/query_range": lambda: ok({"resultType": "matrix",
                                               "result": self._matrix(request)}),
            "/notifications": lambda: httpx.Response(200, text=json.dumps(self.notifications)),
        }
        return route.get(request.url.path, lambda: httpx.Response(404))()

    def _matrix(self, request: httpx.Request) -> list[dict[str, object]]:
        query = request.url.params.get("query", "")
        return next((m for part, m in self.matrix_for.items() if part in query), self.matrix)

    def _alerts(self) -> httpx.Response:
        current = self.alert_script.pop(0) if len(self.alert_script) > 1 else (
            self.alert_script[0] if self.alert_script else [])
        return ok({"alerts": current})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))


@dataclass
class ScriptedSource:
    """A MetricsSource replaying snapshots (the last one repeats)."""

    texts: list[str]
    calls: int = 0

    def scrape(self) -> MetricsSnapshot:
        text = self.texts[min(self.calls, len(self.texts) - 1)]
        self.calls += 1
        return parse_metrics(text, url="fake://node/metrics")


def vllm_text(running: float = 0, waiting: float = 0, kv: float = 0.0,
              gen: float = 0) -> str:
    labels = '{engine="0",model_name="tiny"}'
    return "\n".join([
        "# TYPE vllm:num_requests_running gauge",
        f"vllm:num_requests_running{labels} {running}",
        "# TYPE vllm:num_requests_waiting gauge",
        f"vllm:num_requests_waiting{labels} {waiting}",
        "# TYPE vllm:kv_cache_usage_perc gauge",
        f"vllm:kv_cache_usage_perc{labels} {kv}",
        "# TYPE vllm:generation_tokens counter",
        f"vllm:generation_tokens_total{labels} {gen}",
        "",
    ])
