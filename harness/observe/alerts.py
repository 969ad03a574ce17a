"""Alert states, notifications and PromQL conditions, awaited with deadlines.

:class:`Observer` ties a :class:`PrometheusClient` and a :class:`WebhookClient`
together; every wait goes through :class:`harness.waits.Wait` and reports what
it last saw when the deadline passes:

* ``NotReady``     the condition did not hold in time (with the last state seen);
* ``Unreachable``  the last polls could not reach Prometheus / the receiver
  (URL, and what was being awaited);
* ``QueryError``   Prometheus rejected the PromQL (raised at once, not retried);
* ``ConfigError``  an alert name no loaded rule defines (raised at call time,
  with the known names from ``/api/v1/rules``);
* ``DrillFailed``  :meth:`Observer.assert_no_unexpected_alerts` found alerts
  outside the allowed set.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar, cast

import httpx

from harness.errors import ConfigError, DrillFailed, NotReady, Unreachable
from harness.observe.prom import ActiveAlert, PrometheusClient, Sample, format_labels
from harness.observe.webhook import Notification
from harness.topology import Topology
from harness.waits import Clock, MonotonicClock, Probe, Wait

T = TypeVar("T")
AlertState = Literal["firing", "pending", "resolved"]


class WebhookClient:
    """Reads the harness webhook receiver's ``/notifications``."""

    def __init__(self, base_url: str, client: httpx.Client, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client
        self._timeout = timeout

    def notifications(self) -> tuple[Notification, ...]:
        url = f"{self.base_url}/notifications"
        try:
            response = self._client.get(url, timeout=self._timeout)
            response.raise_for_status()
            items = json.loads(response.text)
        except (httpx.HTTPError, ValueError) as exc:
            raise Unreachable(url, "the webhook receiver's notification list",
                              f"{type(exc).__name__}: {exc}") from exc
        return tuple(Notification.from_json(item) for item in items)


@dataclass(frozen=True)
class AlertObservation:
    """An alert seen in the awaited state: when (unix time) and after how long."""

    name: str
    state: str
    labels: Mapping[str, str] = field(hash=False)
    seen_at: float
    waited_s: float
    active_at: float | None = None


@dataclass(frozen=True)
class FiredAlert:
    """An alert that was firing at some point of a window (from ``ALERTS``)."""

    name: str
    labels: Mapping[str, str] = field(hash=False)
    first_seen: float
    last_seen: float

    def describe(self) -> str:
        return (f"{self.name}{format_labels(self.labels, skip=('alertname', 'alertstate'))} "
                f"firing from {_iso(self.first_seen)} to {_iso(self.last_seen)}")


@dataclass
class Observer:
    """Waits and assertions on alerts, notifications and PromQL conditions."""

    prometheus: PrometheusClient
    webhook: WebhookClient
    interval: float = 0.25
    step_s: float = 1.0
    clock: Clock = field(default_factory=MonotonicClock)
    wall: Callable[[], float] = time.time

    @classmethod
    def from_topology(cls, topology: Topology, client: httpx.Client) -> Observer:
        return cls(prometheus=PrometheusClient(topology.prometheus_url, client),
                   webhook=WebhookClient(topology.webhook_url, client),
                   step_s=float(topology.prometheus.evaluation_interval_s))

    # -- alerts ---------------------------------------------------------------------------

    def wait_for_alert(self, name: str, state: AlertState = "firing", *, within: float,
                       labels: Mapping[str, str] | None = None) -> AlertObservation:
        """Wait until alert ``name`` (matching ``labels``) is pending, firing or resolved."""
        self.check_alert_names([name])
        started = self.clock.now()

        def probe() -> Probe[AlertObservation]:
            alerts = [a for a in self.prometheus.alerts() if a.name == name and a.matches(labels)]
            hit = _alert_hit(alerts, state)
            if hit is None:
                return Probe(done=False, seen=_describe_alerts(alerts, name))
            resolved = state == "resolved"
            return Probe(done=True, value=AlertObservation(
                name=name, state=state, labels=dict(labels or {}) if resolved else hit.labels,
                seen_at=self.wall(), waited_s=self.clock.now() - started,
                active_at=None if resolved else hit.active_at))

        awaited = f"alert {name}{format_labels(labels or {})} to be {state}"
        return self._poll(awaited, within, probe)

    def check_alert_names(self, names: Collection[str]) -> None:
        """ConfigError unless every name is an alerting rule Prometheus has loaded."""
        known = self.prometheus.alert_names()
        unknown = sorted(set(names) - known)
        if unknown:
            raise ConfigError(f"no loaded rule defines alert(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known)) or 'none'}")

    # -- notifications ----------------------------------------------------------------------

    def wait_for_notification(self, name: str, *, status: str = "firing",
                              receiver: str | None = None,
                              labels: Mapping[str, str] | None = None,
                              since: float | None = None, within: float) -> Notification:
        """Wait until the webhook receiver got ``name`` with ``status`` (after ``since``)."""
        self.check_alert_names([name])

        def wanted(n: Notification) -> bool:
            return (n.alertname == name and n.status == status
                    and (receiver is None or n.receiver == receiver)
                    and (since is None or n.received_at >= since)
                    and all(n.labels.get(k) == v for k, v in (labels or {}).items()))

        def probe() -> Probe[Notification]:
            got = self.webhook.notifications()
            hits = [n for n in got if wanted(n)]
            if hits:
                return Probe(done=True, value=hits[0])
            return Probe(done=False, seen=_describe_notifications(got))

        where = f" via {receiver}" if receiver else ""
        awaited = f"notification {name}{format_labels(labels or {})} {status}{where}"
        return self._poll(awaited, within, probe)

    # -- conditions -------------------------------------------------------------------------

    def wait_until(self, condition: str, *, within: float) -> tuple[Sample, ...]:
        """Wait until the PromQL ``condition`` returns a non-empty, non-NaN result."""

        def probe() -> Probe[tuple[Sample, ...]]:
            result = tuple(s for s in self.prometheus.query(condition)
                           if not math.isnan(s.value))
            seen = ", ".join(f"{format_labels(s.labels)}={s.value:g}" for s in result[:5])
            return Probe(done=bool(result), value=result, seen=seen or "empty result")

        return self._poll(f"PromQL {condition!r} to hold", within, probe)

    def assert_no_unexpected_alerts(self, *, allowed: Collection[str], since: float,
                                    until: float | None = None) -> tuple[FiredAlert, ...]:
        """DrillFailed if any alert outside ``allowed`` fired in ``[since, until]``.

        Returns every alert that fired in the window (the allowed ones).
        """
        self.check_alert_names(allowed)
        fired = self.fired_alerts(since=since, until=until)
        unexpected = [f for f in fired if f.name not in allowed]
        if unexpected:
            raise DrillFailed("no unexpected alerts",
                              "; ".join(f.describe() for f in unexpected)
                              + f" (allowed: {', '.join(sorted(allowed)) or 'none'})")
        return fired

    def fired_alerts(self, *, since: float, until: float | None = None) -> tuple[FiredAlert, ...]:
        """Every alert firing at some point in ``[since, until]`` (unix times)."""
        end = self.wall() if until is None else until
        step = max(self.step_s, (end - since) / 10_000)
        promql = f'max_over_time(ALERTS{{alertstate="firing"}}[{math.ceil(step)}s])'
        series = self.prometheus.query_range(promql, since, max(end, since), step)
        fired = [FiredAlert(name=s.labels.get("alertname", ""), labels=dict(s.labels),
                            first_seen=s.points[0][0], last_seen=s.points[-1][0])
                 for s in series if s.points]
        return tuple(sorted(fired, key=lambda f: (f.first_seen, f.name)))

    # -- the one poll loop --------------------------------------------------------------------

    def _poll(self, awaited: str, within: float, probe: Callable[[], Probe[T]]) -> T:
        """Wait.until, turning a deadline spent unreachable into :class:`Unreachable`."""
        last_error: list[Unreachable] = []

        def guarded() -> Probe[T]:
            try:
                outcome = probe()
            except Unreachable as exc:
                last_error[:] = [exc]
                return Probe(done=False, seen=str(exc))
            last_error.clear()
            return outcome

        wait = Wait(within=within, interval=self.interval, transient=(), clock=self.clock)
        try:
            return cast(T, wait.until(awaited, guarded))
        except NotReady as exc:
            if last_error:
                raise Unreachable(last_error[0].url, awaited, exc.last_seen) from exc
            raise


def _alert_hit(alerts: list[ActiveAlert], state: AlertState) -> ActiveAlert | None:
    """The matching alert in ``state``; for ``resolved`` a placeholder when none is active."""
    if state == "resolved":
        return None if alerts else _RESOLVED
    return next((a for a in alerts if a.state == state), None)


_RESOLVED = ActiveAlert(name="", state="resolved", labels={}, annotations={}, active_at=None,
                        value=math.nan)


def _describe_alerts(alerts: list[ActiveAlert], name: str) -> str:
    if not alerts:
        return f"no active {name} alert"
    return "; ".join(a.describe() + (f" since {_iso(a.active_at)}" if a.active_at else "")
                     for a in alerts)


def _describe_notifications(got: tuple[Notification, ...]) -> str:
    if not got:
        return "no notification received yet"
    recent = got[-5:]
    return f"{len(got)} received, last: " + "; ".join(
        f"{n.alertname} {n.status} via {n.receiver} at {_iso(n.received_at)}" for n in recent)


def _iso(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"
