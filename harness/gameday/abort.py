"""A game day's abort conditions, judged on what Prometheus holds: the clients' error
ratio and TTFT p95 (the drills' load exports them) and the critical alerts firing.

A condition aborts once it has held for ``for_s`` without a break. A reading Prometheus
could not give (the stack still starting or going down) changes nothing: the next one
decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.clients.prometheus import PrometheusClient
from harness.clock import Clock
from harness.gameday.plan import AbortConditions

WINDOW = "30s"
ERROR_RATIO = (f"sum(rate(llmdrill_client_errors_total[{WINDOW}])) / "
               f"sum(rate(llmdrill_client_requests_total[{WINDOW}]))")
TTFT_P95 = ("histogram_quantile(0.95, sum by (le) "
            f"(rate(llmdrill_client_ttft_seconds_bucket[{WINDOW}])))")
CRITICAL_FIRING = 'ALERTS{alertstate="firing", severity="critical"}'


@dataclass(frozen=True)
class Reading:
    error_ratio: float | None  # None: no client request finished in the window
    ttft_p95_s: float | None
    critical_alerts: frozenset[str]


def read_conditions(prometheus: PrometheusClient) -> Reading:
    """One reading; raises what the client raises when Prometheus cannot answer."""
    return Reading(error_ratio=_scalar(prometheus, ERROR_RATIO),
                   ttft_p95_s=_scalar(prometheus, TTFT_P95),
                   critical_alerts=frozenset(s.labels.get("alertname", "?")
                                             for s in prometheus.query(CRITICAL_FIRING)))


def _scalar(prometheus: PrometheusClient, promql: str) -> float | None:
    values = [s.value for s in prometheus.query(promql) if s.value == s.value]  # not NaN
    return values[0] if values else None


class AbortWatch:
    """Feed it readings; it answers the reason to abort once a breach has lasted."""

    def __init__(self, conditions: AbortConditions, expected_alerts: frozenset[str],
                 clock: Clock) -> None:
        self.conditions = conditions
        self.expected_alerts = expected_alerts
        self.clock = clock
        self._since: dict[str, float] = {}

    def breaches(self, reading: Reading) -> dict[str, str]:
        """``{condition: what was seen}`` for every bound passed in ``reading``."""
        c = self.conditions
        found: dict[str, str] = {}
        if reading.error_ratio is not None and reading.error_ratio > c.error_ratio:
            found["client error ratio"] = f"{reading.error_ratio:.2f} > {c.error_ratio}"
        if reading.ttft_p95_s is not None and reading.ttft_p95_s > c.ttft_p95_s:
            found["client TTFT p95"] = f"{reading.ttft_p95_s:.2f}s > {c.ttft_p95_s}s"
        unexpected = sorted(reading.critical_alerts - self.expected_alerts)
        if c.on_unexpected_critical_alert and unexpected:
            found["unexpected critical alert"] = ", ".join(unexpected)
        return found

    def observe(self, reading: Reading | None) -> str | None:
        """The abort reason once a breach has held ``for_s``; None meanwhile (and for no
        reading)."""
        if reading is None:
            return None
        now = self.clock.now()
        found = self.breaches(reading)
        self._since = {name: self._since.get(name, now) for name in found}
        lasted = [(name, now - since) for name, since in self._since.items()
                  if now - since >= self.conditions.for_s]
        if not lasted:
            return None
        name, held = lasted[0]
        return f"{name}: {found[name]} for {held:.0f}s (for_s {self.conditions.for_s:g})"
