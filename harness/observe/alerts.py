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

The lifecycle is walked honestly: ``resolved`` holds only for an alert that was seen
firing since the given moment (Prometheus' ``ALERTS`` series) and is no longer active;
:meth:`Observer.wait_for_delivery` proves a firing alert reached the webhook receiver of
its severity's Alertmanager route, with detection lag (``activeAt``: condition true ->
firing) and notification lag (firing -> delivered at the receiver).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar, cast

import httpx

from harness.auth import WEBHOOK_TOKEN_ENV, bearer_headers, token_from_env
from harness.clients.prometheus import (
    ActiveAlert,
    PrometheusClient,
    Sample,
    format_labels,
    parse_time,
)
from harness.clock import Clock, SystemClock
from harness.errors import ConfigError, DrillFailed, NotReady, Unreachable
from harness.topology import Topology
from harness.waits import Probe, Wait
from harness.webhook.store import Notification

T = TypeVar("T")
AlertState = Literal["firing", "pending", "resolved"]

#: The route an alert without a routed severity takes (``alertmanager.yml.j2``).
DEFAULT_ROUTE = "default"


def severity_route(severity: str) -> tuple[str, str]:
    """(receiver name, webhook path) of a severity's route, as ``alertmanager.yml.j2``
    renders them: ``harness-<severity>`` posting to ``/alerts/<severity>``."""
    key = severity or DEFAULT_ROUTE
    return f"harness-{key}", f"/alerts/{key}"


class WebhookClient:
    """Reads the harness webhook receiver's ``/notifications``.

    Sends ``Authorization: Bearer <token>``; ``token=None`` reads
    ``LLM_DRILL_WEBHOOK_TOKEN`` (none sent when that is unset).
    """

    def __init__(self, base_url: str, client: httpx.Client, *, timeout: float = 5.0,
                 token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client
        self._timeout = timeout
        self._headers = bearer_headers(token or token_from_env(WEBHOOK_TOKEN_ENV))

    def notifications(self) -> tuple[Notification, ...]:
        url = f"{self.base_url}/notifications"
        try:
            response = self._client.get(url, headers=self._headers, timeout=self._timeout)
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
    active_at: float | None = None  # Prometheus' activeAt: the condition first true
    fired_at: float | None = None  # first seen firing in ALERTS (for ``resolved``)

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")


@dataclass(frozen=True)
class AlertDelivery:
    """A firing alert proven delivered through Alertmanager to its severity's receiver.

    ``active_at`` is when Prometheus first saw the condition true, ``fired_at`` when it
    fired (the ``startsAt`` it sent Alertmanager), ``delivered_at`` when the receiver got
    it (unix times). A time that could not be read stays None, and so does its lag.
    """

    name: str
    severity: str
    receiver: str
    path: str
    labels: Mapping[str, str] = field(hash=False)
    active_at: float | None
    fired_at: float | None
    delivered_at: float

    @property
    def detection_lag_s(self) -> float | None:
        """Condition true -> firing (includes the rule's ``for:``)."""
        if self.active_at is None or self.fired_at is None:
            return None
        return self.fired_at - self.active_at

    @property
    def notification_lag_s(self) -> float | None:
        """Firing -> delivered at the receiver (Alertmanager's group wait and sending)."""
        return None if self.fired_at is None else self.delivered_at - self.fired_at

    def describe(self) -> str:
        def lag(value: float | None) -> str:
            return "unknown" if value is None else f"{value:.1f}s"
        return (f"via {self.receiver} at {self.path}: detection lag "
                f"{lag(self.detection_lag_s)}, notification lag {lag(self.notification_lag_s)}")


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
    clock: Clock = field(default_factory=SystemClock)
    wall: Callable[[], float] = time.time

    @classmethod
    def from_topology(cls, topology: Topology, client: httpx.Client) -> Observer:
        return cls(prometheus=PrometheusClient(topology.prometheus_url, client),
                   webhook=WebhookClient(topology.webhook_url, client),
                   step_s=float(topology.prometheus.evaluation_interval_s))

    # -- alerts ---------------------------------------------------------------------------

    def wait_for_alert(self, name: str, state: AlertState = "firing", *, within: float,
                       labels: Mapping[str, str] | None = None,
                       since: float | None = None) -> AlertObservation:
        """Wait until alert ``name`` (matching ``labels``) is pending, firing or resolved.

        ``firing`` also holds for a firing Prometheus recorded after ``since`` that is over
        by now: an alert that fired and resolved while the caller was busy did fire.
        ``resolved`` needs ``since`` (unix time): it holds only once the alert fired at
        some point after ``since`` and is no longer active; never having fired is not
        resolved.
        """
        self.check_alert_names([name])
        started = self.clock.now()
        if state == "resolved":
            if since is None:
                raise ConfigError(f"waiting for {name} to be resolved needs the moment since "
                                  "which it must have fired")
            return self._wait_resolved(name, labels, since, within, started)

        def probe() -> Probe[AlertObservation]:
            alerts = [a for a in self.prometheus.alerts() if a.name == name and a.matches(labels)]
            hit = next((a for a in alerts if a.state == state), None)
            if hit is not None:
                return Probe(done=True, value=AlertObservation(
                    name=name, state=state, labels=hit.labels, seen_at=self.wall(),
                    waited_s=self.clock.now() - started, active_at=hit.active_at))
            earlier = self._fired(name, labels, since) if state == "firing" and since else []
            if earlier:
                return Probe(done=True, value=self._fired_earlier(earlier[0], started))
            return Probe(done=False, seen=_describe_alerts(alerts, name))

        awaited = f"alert {name}{format_labels(labels or {})} to be {state}"
        return self._poll(awaited, within, probe)

    def _fired_earlier(self, fired: FiredAlert, started: float) -> AlertObservation:
        """A firing Prometheus recorded in ``ALERTS`` that is over by the time it is looked
        for (a short alert, a slow caller): it fired all the same."""
        return AlertObservation(name=fired.name, state="firing",
                                labels=_alert_labels(fired.labels), seen_at=self.wall(),
                                waited_s=self.clock.now() - started, fired_at=fired.first_seen)

    def wait_inactive(self, name: str, *, within: float,
                      labels: Mapping[str, str] | None = None) -> None:
        """Wait until no alert ``name`` (matching ``labels``) is pending or firing: a
        precondition, not a resolve (which needs a firing first: ``wait_for_alert``)."""
        self.check_alert_names([name])

        def probe() -> Probe[None]:
            active = [a for a in self.prometheus.alerts() if a.name == name and a.matches(labels)]
            return Probe(done=not active, seen=_describe_alerts(active, name))

        self._poll(f"alert {name}{format_labels(labels or {})} to be inactive", within, probe)

    def _wait_resolved(self, name: str, labels: Mapping[str, str] | None, since: float,
                       within: float, started: float) -> AlertObservation:
        def probe() -> Probe[AlertObservation]:
            active = [a for a in self.prometheus.alerts() if a.name == name and a.matches(labels)]
            if active:
                return Probe(done=False, seen=_describe_alerts(active, name))
            fired = self._fired(name, labels, since)
            if not fired:
                return Probe(done=False, seen=f"{name} never fired since {_iso(since)}: "
                                              "a resolve without a firing proves nothing")
            return Probe(done=True, value=AlertObservation(
                name=name, state="resolved", labels=_alert_labels(fired[0].labels),
                seen_at=self.wall(), waited_s=self.clock.now() - started,
                fired_at=fired[0].first_seen))

        awaited = (f"alert {name}{format_labels(labels or {})} to fire and be resolved "
                   f"(since {_iso(since)})")
        return self._poll(awaited, within, probe)

    def _fired(self, name: str, labels: Mapping[str, str] | None,
               since: float) -> list[FiredAlert]:
        return [f for f in self.fired_alerts(since=since)
                if f.name == name and _has_labels(f.labels, labels)]

    # -- delivery ---------------------------------------------------------------------------

    def wait_for_delivery(self, alert: AlertObservation, *, since: float,
                          within: float) -> AlertDelivery:
        """Wait until the firing ``alert`` reached its severity's receiver through
        Alertmanager (delivered after ``since``); NotReady names the route awaited."""
        receiver, path = severity_route(alert.severity)
        labels = _alert_labels(alert.labels)
        note = self.wait_for_notification(alert.name, status="firing", receiver=receiver,
                                          path=path, labels=labels, since=since, within=within)
        active_at = alert.active_at
        if active_at is None:
            active_at = self.active_since(alert.name, labels, since)
        return AlertDelivery(name=alert.name, severity=alert.severity, receiver=receiver,
                             path=path, labels=labels, active_at=active_at,
                             fired_at=parse_time(note.starts_at) or alert.fired_at,
                             delivered_at=note.received_at)

    def active_since(self, name: str, labels: Mapping[str, str] | None,
                     since: float) -> float | None:
        """Prometheus' activeAt of the first episode of ``name`` after ``since`` (the value
        of its ``ALERTS_FOR_STATE`` series, in whole seconds), or None if it kept none."""
        end = max(self.wall(), since)
        step = max(self.step_s, (end - since) / 10_000)
        series = self.prometheus.query_range(f'ALERTS_FOR_STATE{{alertname="{name}"}}',
                                             since, end, step)
        starts = [s.points[0][1] for s in series
                  if s.points and _has_labels(s.labels, labels)]
        return min(starts) if starts else None

    def wait_evaluated_after(self, moment: float, *, within: float) -> float:
        """Wait until Prometheus has evaluated every alerting rule after ``moment`` (unix
        time); returns the oldest of those evaluations. Alerts read after it reflect data
        up to ``moment`` at least."""

        def probe() -> Probe[float]:
            times = [r.last_evaluation for r in self.prometheus.rules() if r.kind == "alerting"]
            oldest = min((t or 0.0 for t in times), default=0.0)
            return Probe(done=bool(times) and oldest > moment, value=oldest,
                         seen=f"oldest rule evaluation {_iso(oldest) if oldest else 'none'}")

        return self._poll(f"every alerting rule evaluated after {_iso(moment)}", within, probe)

    def check_alert_names(self, names: Collection[str]) -> None:
        """ConfigError unless every name is an alerting rule Prometheus has loaded."""
        known = self.prometheus.alert_names()
        unknown = sorted(set(names) - known)
        if unknown:
            raise ConfigError(f"no loaded rule defines alert(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known)) or 'none'}")

    # -- notifications ----------------------------------------------------------------------

    def wait_for_notification(self, name: str, *, status: str = "firing",
                              receiver: str | None = None, path: str | None = None,
                              labels: Mapping[str, str] | None = None,
                              since: float | None = None, within: float) -> Notification:
        """Wait until the webhook receiver got ``name`` with ``status`` (after ``since``),
        from ``receiver`` and on ``path`` when given."""
        self.check_alert_names([name])

        def wanted(n: Notification) -> bool:
            return (n.alertname == name and n.status == status
                    and (receiver is None or n.receiver == receiver)
                    and (path is None or n.path == path)
                    and (since is None or n.received_at >= since)
                    and all(n.labels.get(k) == v for k, v in (labels or {}).items()))

        def probe() -> Probe[Notification]:
            got = self.webhook.notifications()
            hits = [n for n in got if wanted(n)]
            if hits:
                return Probe(done=True, value=hits[0])
            return Probe(done=False, seen=_describe_notifications(got))

        where = (f" via {receiver}" if receiver else "") + (f" at {path}" if path else "")
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


def _has_labels(labels: Mapping[str, str], wanted: Mapping[str, str] | None) -> bool:
    return all(labels.get(k) == v for k, v in (wanted or {}).items())


def _alert_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """An alert's own labels, without what the ``ALERTS`` series adds."""
    return {k: v for k, v in labels.items() if k not in ("alertstate", "__name__")}


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
