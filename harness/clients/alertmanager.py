"""Alertmanager's silences and alerts (its API v2), over an injected ``httpx.Client``.

What a planned restart needs, as a team runs it with ``amtool``: put a silence on the
alerts the restart will raise for one node, see when Alertmanager no longer holds any of
them, then expire the silence. Every failure names the URL and what was expected
(:class:`~harness.errors.Unreachable`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from harness.errors import Unreachable


@dataclass(frozen=True)
class HeldAlert:
    """An alert Alertmanager holds (not resolved): ``active``, or ``suppressed`` by the
    silences named in ``silenced_by``."""

    name: str
    state: str
    labels: Mapping[str, str] = field(hash=False)
    silenced_by: tuple[str, ...] = ()


def iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


def equal_matchers(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v, "isRegex": False, "isEqual": True}
            for k, v in sorted(labels.items())]


class AlertmanagerClient:
    """Silences and held alerts of one Alertmanager."""

    def __init__(self, base_url: str, client: httpx.Client, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client
        self._timeout = timeout

    def silence(self, labels: Mapping[str, str], *, starts_at: float, ends_at: float,
                comment: str, created_by: str = "llm-drill") -> str:
        """Silence the alerts whose labels equal ``labels`` from ``starts_at`` to
        ``ends_at`` (unix times); its id."""
        body = {"matchers": equal_matchers(labels), "startsAt": iso(starts_at),
                "endsAt": iso(ends_at), "createdBy": created_by, "comment": comment}
        reply = self._call("POST", "/api/v2/silences", "a new silence's id", json=body)
        try:
            return str(reply.json()["silenceID"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Unreachable(self.base_url + "/api/v2/silences", "a new silence's id",
                              f"got {reply.text[:160]!r}") from exc

    def expire(self, silence_id: str) -> None:
        self._call("DELETE", f"/api/v2/silence/{silence_id}", "the silence expired")

    def held(self, labels: Mapping[str, str]) -> tuple[HeldAlert, ...]:
        """The alerts matching ``labels`` that Alertmanager holds, silenced or not."""
        params = [("filter", f'{k}="{v}"') for k, v in sorted(labels.items())]
        reply = self._call("GET", "/api/v2/alerts", "a list of alerts", params=params)
        try:
            return tuple(held_alert(item) for item in reply.json())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise Unreachable(self.base_url + "/api/v2/alerts", "a list of alerts",
                              f"got {reply.text[:160]!r}") from exc

    def _call(self, method: str, path: str, expected: str, **kwargs: Any) -> httpx.Response:
        url = self.base_url + path
        try:
            reply = self._client.request(method, url, timeout=self._timeout, **kwargs)
            reply.raise_for_status()
        except httpx.HTTPError as exc:
            raise Unreachable(url, expected, f"{type(exc).__name__}: {exc}") from exc
        return reply


def held_alert(item: Mapping[str, Any]) -> HeldAlert:
    labels = {str(k): str(v) for k, v in item["labels"].items()}
    status = item.get("status") or {}
    return HeldAlert(labels.get("alertname", ""), str(status.get("state", "")), labels,
                     tuple(str(s) for s in status.get("silencedBy") or ()))
