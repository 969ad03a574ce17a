"""A thin typed client for Prometheus' HTTP API (instant / range queries, alerts, rules).

Why not ``prometheus-api-client`` (dropped from the dependencies; checked on
0.7.2): it is built on ``requests`` and takes at most a ``requests.Session``, so
it cannot take an injected ``httpx.Client`` and unit tests could not run on
``httpx.MockTransport``; its results are untyped dicts (or pandas frames); it
has no call for ``/api/v1/alerts`` or ``/api/v1/rules``, two of the five
endpoints used here; and it pulls in ``requests`` and ``dateparser`` (with
``regex``, ``pytz``, ``tzlocal``, ~12 MB installed, 224 modules and ~0.4 s to
import ``PrometheusConnect``). The five endpoints the harness needs fit in
this module, with frozen dataclasses for results and Prometheus' errors mapped
to :class:`~harness.errors.QueryError` / :class:`~harness.errors.Unreachable`
at the boundary.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import httpx

from harness.errors import QueryError, Unreachable

JSON = object


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector (or a scalar, with no labels)."""

    labels: Mapping[str, str] = field(hash=False)
    value: float
    timestamp: float

    @property
    def name(self) -> str:
        return self.labels.get("__name__", "")


@dataclass(frozen=True)
class Series:
    """One series of a range query: (unix time, value) points in time order."""

    labels: Mapping[str, str] = field(hash=False)
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class ActiveAlert:
    """An alert Prometheus currently holds pending or firing (``/api/v1/alerts``)."""

    name: str
    state: str
    labels: Mapping[str, str] = field(hash=False)
    annotations: Mapping[str, str] = field(hash=False)
    active_at: float | None
    value: float

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(self.labels.get(k) == v for k, v in (labels or {}).items())

    def describe(self) -> str:
        return f"{self.name}{format_labels(self.labels, skip=('alertname',))} {self.state}"


@dataclass(frozen=True)
class Rule:
    """A loaded rule (``/api/v1/rules``); ``duration_s`` is the alert's ``for:``."""

    name: str
    kind: str
    query: str
    duration_s: float
    health: str
    group: str
    last_evaluation: float | None = None  # unix time; None before its first evaluation


def format_labels(labels: Mapping[str, str], skip: tuple[str, ...] = ()) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k not in skip)
    return "{" + inner + "}"


class PrometheusClient:
    """Queries one Prometheus server through an injected ``httpx.Client``."""

    def __init__(self, base_url: str, client: httpx.Client, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client
        self._timeout = timeout

    def query(self, promql: str, at: float | None = None) -> tuple[Sample, ...]:
        """Evaluate ``promql`` at ``at`` (unix time; default now)."""
        params = {"query": promql} | ({"time": repr(at)} if at is not None else {})
        data = self._call("/api/v1/query", params, promql)
        return _instant(data, promql)

    def query_range(self, promql: str, start: float, end: float,
                    step: float) -> tuple[Series, ...]:
        """Evaluate ``promql`` over ``[start, end]`` every ``step`` seconds."""
        params = {"query": promql, "start": repr(start), "end": repr(end), "step": repr(step)}
        data = self._call("/api/v1/query_range", params, promql)
        return tuple(_series(item) for item in _list(_field(data, "result")))

    def alerts(self) -> tuple[ActiveAlert, ...]:
        data = self._call("/api/v1/alerts", {}, "<alerts>")
        return tuple(_alert(item) for item in _list(_field(data, "alerts")))

    def rules(self) -> tuple[Rule, ...]:
        data = self._call("/api/v1/rules", {}, "<rules>")
        rules: list[Rule] = []
        for group in _list(_field(data, "groups")):
            name = str(_field(group, "name"))
            rules += [_rule(item, name) for item in _list(_field(group, "rules"))]
        return tuple(rules)

    def scraped_instances(self, job: str) -> frozenset[str]:
        """``instance`` labels of the active scrape targets of ``job``."""
        data = self._call("/api/v1/targets", {"state": "active"}, "<targets>")
        labels = [_labels(_field(t, "labels")) for t in _list(_field(data, "activeTargets"))]
        return frozenset(lab.get("instance", "") for lab in labels if lab.get("job") == job)

    def alert_names(self) -> frozenset[str]:
        """Names of every alerting rule Prometheus has loaded."""
        return frozenset(r.name for r in self.rules() if r.kind == "alerting")

    def _call(self, path: str, params: Mapping[str, str], what: str) -> JSON:
        url = self.base_url + path
        try:
            response = self._client.get(url, params=params, timeout=self._timeout)
        except httpx.TransportError as exc:
            raise Unreachable(url, "a Prometheus API answer", f"{type(exc).__name__}: {exc}") \
                from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise QueryError(what, f"HTTP {response.status_code}, not JSON: "
                                   f"{response.text[:200]!r}") from exc
        if response.status_code != 200 or _field(body, "status") != "success":
            raise QueryError(what, _error_message(body, response.status_code))
        return _field(body, "data")


def _error_message(body: JSON, status: int) -> str:
    if isinstance(body, dict):
        return f"HTTP {status} {body.get('errorType', '')}: {body.get('error', body)}".strip()
    return f"HTTP {status}: {body!r}"


def _field(obj: JSON, key: str) -> JSON:
    if not isinstance(obj, dict) or key not in obj:
        raise QueryError("<response>", f"unexpected Prometheus answer, no {key!r}: {obj!r:.200}")
    return cast(JSON, obj[key])


def _list(obj: JSON) -> list[JSON]:
    return list(obj) if isinstance(obj, list) else []


def _labels(obj: JSON) -> dict[str, str]:
    return {str(k): str(v) for k, v in obj.items()} if isinstance(obj, dict) else {}


def to_float(text: JSON) -> float:
    """Prometheus sends sample values as strings, including ``NaN`` and ``+Inf``."""
    try:
        return float(str(text))
    except ValueError:
        return math.nan


def _pair(obj: JSON) -> tuple[float, float]:
    items = _list(obj)
    if len(items) != 2:
        raise QueryError("<response>", f"not a [time, value] pair: {obj!r}")
    return to_float(items[0]), to_float(items[1])


def _instant(data: JSON, promql: str) -> tuple[Sample, ...]:
    kind, result = _field(data, "resultType"), _field(data, "result")
    if kind in ("scalar", "string"):
        at, value = _pair(result)
        return (Sample({}, value, at),)
    if kind != "vector":
        raise QueryError(promql, f"expected an instant vector, got a {kind}")
    samples: list[Sample] = []
    for item in _list(result):
        at, value = _pair(_field(item, "value"))
        samples.append(Sample(_labels(_field(item, "metric")), value, at))
    return tuple(samples)


def _series(item: JSON) -> Series:
    points = tuple(_pair(p) for p in _list(_field(item, "values")))
    return Series(_labels(_field(item, "metric")), points)


def _alert(item: JSON) -> ActiveAlert:
    labels = _labels(_field(item, "labels"))
    active = item.get("activeAt") if isinstance(item, dict) else None
    return ActiveAlert(name=labels.get("alertname", ""), state=str(_field(item, "state")),
                       labels=labels, annotations=_labels(_field(item, "annotations")),
                       active_at=parse_time(str(active)) if active else None,
                       value=to_float(item.get("value", "NaN") if isinstance(item, dict) else ""))


def _rule(item: JSON, group: str) -> Rule:
    duration = item.get("duration", 0) if isinstance(item, dict) else 0
    evaluated = item.get("lastEvaluation", "") if isinstance(item, dict) else ""
    return Rule(name=str(_field(item, "name")), kind=str(_field(item, "type")),
                query=str(_field(item, "query")), duration_s=to_float(duration),
                health=str(item.get("health", "") if isinstance(item, dict) else ""),
                group=group, last_evaluation=parse_time(str(evaluated or "")))


def parse_time(text: str) -> float | None:
    """Unix time of an RFC 3339 timestamp with up to nanoseconds (Prometheus, Alertmanager)."""
    if not text or text.startswith("0001-01-01"):
        return None
    text = text.replace("Z", "+00:00")
    head, dot, frac = text.partition(".")
    digits = "".join(itertools.takewhile(str.isdigit, frac))
    stamp = f"{head}.{digits[:6]:0<6}{frac[len(digits):]}" if dot else text
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None
