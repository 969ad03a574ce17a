"""One drill run: the record a drill builds as it goes, and the steps every drill shares.

    with DrillRun.open("cancel_storm", stack, config, exporter) as drill:
        drill.ensure_steady()
        ...
        drill.check("generation stopped", flat, "token counters still rising: ...")

Every check is recorded as a verdict; a failed one raises :class:`DrillFailed`
naming the property. What the drill cannot prove (its fault took effect, a
precondition held) raises :class:`Inconclusive` with what it saw: the third outcome,
never a pass. Whatever happens, the journal is written on exit.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Generic, Self

import httpx
from typing_extensions import TypeVar

from harness.clients.prometheus import format_labels
from harness.drill.config import DrillSettings
from harness.drill.journal import (
    AlertRecord,
    Journal,
    LoadSummary,
    PhaseMark,
    Verdict,
    write_journal,
)
from harness.errors import DrillFailed, HarnessError, Inconclusive, NotReady
from harness.load import (
    BackgroundLoad,
    CancelReason,
    JsonlSink,
    LoadExporter,
    LoadSpec,
    RequestResult,
    ResultSink,
)
from harness.load.stats import SLO, Window, summarize
from harness.manual import desk_from_env, people_measurements
from harness.observe import (
    AlertObservation,
    Observer,
    Timeline,
    TimelineSample,
    TimelineTargets,
)
from harness.observe.alerts import AlertDelivery, AlertState, severity_route
from harness.runs import abort_reason
from harness.stack.stack import Stack

STEADY_PROPERTY = "steady state before the fault"
PASSED, FAILED, INCONCLUSIVE, ABORTED = "passed", "failed", "inconclusive", "aborted"
INTERRUPTED = "interrupted"
DELIVERY_MARGIN_S = 15.0

# A run's config type: its catalogue's (``DrillRun[DrillsConfig]``); a bare ``DrillRun``,
# as library helpers take it, is a run of any catalogue (they read ``steady`` and ``slo``).
ConfigT_co = TypeVar("ConfigT_co", bound=DrillSettings, covariant=True, default=DrillSettings)
SettingsT = TypeVar("SettingsT", bound=DrillSettings)


@dataclass
class DrillRun(Generic[ConfigT_co]):
    """One drill's run; ``config`` is its catalogue's config (``steady`` and ``slo`` are
    read here, the drill's own section by the drill)."""

    name: str
    stack: Stack
    config: ConfigT_co
    exporter: LoadExporter | None = None
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10.0))
    started_at: float = field(default_factory=time.time)
    steady_at: float | None = None  # alerts before steady state belong to the last drill
    phases: list[PhaseMark] = field(default_factory=list)
    measurements: dict[str, float] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    alerts: list[AlertRecord] = field(default_factory=list)
    loads: list[LoadSummary] = field(default_factory=list)
    aborted: bool = False
    _timeline: Timeline | None = None
    _files: list[JsonlSink] = field(default_factory=list)
    _loads: list[BackgroundLoad] = field(default_factory=list)

    @staticmethod
    def open(name: str, stack: Stack, config: SettingsT,
             exporter: LoadExporter | None = None) -> DrillRun[SettingsT]:
        return DrillRun(name=name, stack=stack, config=config, exporter=exporter)

    @property
    def observer(self) -> Observer:
        return Observer.from_topology(self.stack.topology, self.http)

    # -- recording ------------------------------------------------------------------------
    @property
    def watch_from(self) -> float:
        """Where this drill's alert window begins: steady state, once reached."""
        return self.steady_at if self.steady_at is not None else self.started_at

    def phase(self, name: str) -> float:
        """Mark a moment of the drill; returns its wall-clock time."""
        now = time.time()
        self.phases.append(PhaseMark(name, now))
        return now

    def measure(self, key: str, value: float) -> float:
        self.measurements[key] = round(value, 4)
        return value

    def check(self, prop: str, ok: bool, detail: str = "") -> None:
        """Record a verdict; a property that does not hold fails the drill, naming it."""
        self.verdicts.append(Verdict(prop, ok, detail))
        if not ok:
            raise DrillFailed(prop, detail)

    def check_together(self, *checks: tuple[str, bool, str]) -> None:
        """Record several verdicts on one piece of evidence, then fail naming every
        property that did not hold (a broken stack often breaks more than one, and the
        report should name them all, not whichever came first)."""
        self.verdicts.extend(Verdict(prop, ok, detail) for prop, ok, detail in checks)
        failed = [(prop, detail) for prop, ok, detail in checks if not ok]
        if failed:
            raise DrillFailed(*failed[0], also=tuple(failed[1:]))

    def inconclusive(self, what: str, seen: str) -> Inconclusive:
        """Record that ``what`` could not be proven; the caller raises what this returns."""
        self.verdicts.append(Verdict(what, False, f"{INCONCLUSIVE}: {seen}"))
        return Inconclusive(what, seen)

    # -- alerts ---------------------------------------------------------------------------
    def expect_alert(self, name: str, state: AlertState = "firing", *, within: float,
                     labels: Mapping[str, str] | None = None,
                     set_off_after: float | None = None) -> AlertObservation:
        """Wait for an alert state; not seeing it in time fails the drill.

        ``resolved`` holds only for an alert that fired since the drill's steady state.
        A firing or resolved alert must also have been delivered through Alertmanager to
        its severity's receiver (:meth:`expect_delivered`).

        ``set_off_after`` (unix time, the fault) asks for the fault's own firing: one that
        became active after it and was delivered after it. An episode already active
        then is not the fault's effect, so it leaves the property INCONCLUSIVE (hold the
        fault with :meth:`await_quiet` first).
        """
        prop = f"{name} goes {state}"
        since = self.watch_from if set_off_after is None else set_off_after
        try:
            seen = self.observer.wait_for_alert(name, state, within=within, labels=labels,
                                                since=since)
        except NotReady as exc:
            self.check(prop, False, str(exc))
            raise  # unreachable: check raised
        if set_off_after is not None:
            self._refuse_an_earlier_episode(prop, seen, set_off_after)
        self.alerts.append(AlertRecord(name, state, seen.seen_at, dict(seen.labels)))
        self.check(prop, True, f"after {seen.waited_s:.1f}s")
        if state != "pending":
            self.expect_delivered(seen, since=since)
        return seen

    def _refuse_an_earlier_episode(self, prop: str, seen: AlertObservation,
                                   fault_at: float) -> None:
        began = seen.active_at if seen.active_at is not None else seen.fired_at
        if began is not None and began < fault_at:
            raise self.inconclusive(
                prop, f"{seen.name} was active {fault_at - began:.1f}s before the fault: "
                      "its firing is not the fault's effect")

    def await_quiet(self, name: str, *, within: float,
                    labels: Mapping[str, str] | None = None) -> None:
        """Hold the fault until alert ``name`` is neither pending nor firing, so that its
        next firing can only be the fault's; INCONCLUSIVE if it stays active."""
        prop = f"{name}{format_labels(labels) if labels else ''} is quiet before the fault"
        started = time.time()
        try:
            self.await_evaluation_after_now()  # quiet on what was scraped from here on
            self.observer.wait_inactive(name, within=within, labels=labels)
        except NotReady as exc:
            raise self.inconclusive(prop, str(exc)) from exc
        self.check(prop, True, f"after {time.time() - started:.1f}s")

    def await_evaluation_after_now(self) -> None:
        """Until Prometheus has scraped and evaluated its rules after this moment: the
        alerts it reports next reflect the stack as of now at least."""
        prom = self.stack.topology.prometheus
        settle = float(prom.scrape_interval_s + prom.evaluation_interval_s)
        self.observer.wait_evaluated_after(self.observer.wall() + settle, within=settle + 10)

    def expect_delivered(self, seen: AlertObservation, within: float | None = None, *,
                         since: float | None = None) -> AlertDelivery:
        """The alert reached its severity's receiver through Alertmanager since ``since``
        (steady state unless given); records detection lag (condition true -> firing) and
        notification lag (firing -> delivered) as ``detection_lag_s.<alert>`` /
        ``notification_lag_s.<alert>``."""
        receiver, _ = severity_route(seen.severity)
        prop = f"{seen.name} delivered to {receiver}"
        try:
            delivery = self.observer.wait_for_delivery(
                seen, since=self.watch_from if since is None else since,
                within=within or self._delivery_within_s)
        except NotReady as exc:
            self.check(prop, False, str(exc))
            raise  # unreachable: check raised
        record = AlertRecord(seen.name, "notified", delivery.delivered_at,
                             dict(delivery.labels))
        if record not in self.alerts:  # resolved re-proves the delivery firing proved
            self.alerts.append(record)
        for key, lag in (("detection_lag_s", delivery.detection_lag_s),
                         ("notification_lag_s", delivery.notification_lag_s)):
            # the first proof keeps its lags: firing reads activeAt to the millisecond,
            # resolved only from ALERTS_FOR_STATE (whole seconds)
            if lag is not None and f"{key}.{seen.name}" not in self.measurements:
                self.measure(f"{key}.{seen.name}", lag)
        self.check(prop, True, delivery.describe())
        return delivery

    @property
    def _delivery_within_s(self) -> float:
        """Alertmanager's group wait and one group interval, plus an evaluation and a
        generous margin for a loaded machine."""
        t = self.stack.topology
        return (t.alertmanager.group_wait_s + t.alertmanager.group_interval_s
                + t.prometheus.evaluation_interval_s + DELIVERY_MARGIN_S)

    def expect_no_unexpected_alerts(self, allowed: Collection[str]) -> None:
        try:
            fired = self.observer.assert_no_unexpected_alerts(allowed=allowed,
                                                              since=self.watch_from)
        except DrillFailed as exc:
            self.verdicts.append(Verdict(exc.property, False, exc.detail))
            raise
        for alert in fired:
            self.alerts.append(AlertRecord(alert.name, "firing", alert.first_seen,
                                           dict(alert.labels)))
        self.verdicts.append(Verdict("no unexpected alerts", True,
                                     f"allowed: {', '.join(sorted(allowed))}"))

    # -- load -----------------------------------------------------------------------------
    def load(self, spec: LoadSpec) -> BackgroundLoad:
        """A bounded background load whose results also go to the run's JSONL and exporter."""
        path = self.stack.run_dir / "loads" / f"{self.name}-{len(self._files) + 1}.jsonl"
        self._files.append(JsonlSink(path))
        sinks: list[ResultSink] = [self._files[-1]]
        if self.exporter is not None:
            sinks.append(self.exporter)
        self._loads.append(BackgroundLoad(spec, sinks=sinks))
        return self._loads[-1]

    def summarize(self, window: str, results: tuple[RequestResult, ...],
                  between: tuple[float, float] | None = None) -> LoadSummary:
        slo = SLO(ttft_s=self.config.slo.ttft_s, e2e_s=self.config.slo.e2e_s)
        chosen = Window(*between) if between else None
        s = summarize(results, window=chosen, slo=slo)
        summary = LoadSummary(
            window=window, requests=s.requests, ok=s.completed,
            errors={str(k): v for k, v in s.errors.items()},
            ttft_p50_s=s.ttft.p50 if s.ttft else None, ttft_p95_s=s.ttft.p95 if s.ttft else None,
            e2e_p95_s=s.e2e.p95 if s.e2e else None, tokens_per_s=s.output_tokens_per_s,
            goodput_per_s=s.goodput_per_s, retries=s.retries,
            client_stalled=sum(1 for r in results
                               if r.cancelled is CancelReason.CLIENT_STALLED
                               and (chosen is None or chosen.holds(r))))
        self.loads.append(summary)
        return summary

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> Self:
        targets = TimelineTargets.from_topology(self.stack.topology, self.http)
        self._timeline = Timeline(targets, interval=0.5).start()
        self.phase("start")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.phase("end")
        self._stop_loads()
        samples = self._timeline.stop() if self._timeline else ()
        write_journal(self._journal(exc, samples), self.stack.run_dir)
        for sink in self._files:
            sink.close()
        self.http.close()

    def _stop_loads(self) -> None:
        """A drill that failed half-way must not leave its load running into the next."""
        for load in self._loads:
            load.stop()
            # HarnessError: it failed or overran (already reported); RuntimeError: the
            # load never started, so there is nothing to wait for.
            with contextlib.suppress(HarnessError, RuntimeError):
                load.wait(within=60)

    def _journal(self, exc: BaseException | None,
                 samples: tuple[TimelineSample, ...]) -> Journal:
        return Journal(
            drill=self.name, run_id=self.stack.run_id, started_at=self.started_at,
            ended_at=time.time(),
            outcome=outcome_of(exc, aborted=self.aborted or self._game_day_abort(exc)),
            phases=tuple(self.phases),
            measurements={**self.measurements, **self._people()},
            verdicts=tuple(self.verdicts),
            alerts=tuple(self.alerts), load=tuple(self.loads),
            timeline=tuple(asdict(s) for s in samples),
            error=self._error_text(exc))

    def _people(self) -> dict[str, float]:
        """In a manual game day, the people's timings around this drill's fault."""
        desk = desk_from_env()
        return {} if desk is None else people_measurements(desk.events(), self.started_at)

    @staticmethod
    def _game_day_abort(exc: BaseException | None) -> bool:
        return isinstance(exc, KeyboardInterrupt) and abort_reason() is not None

    def _error_text(self, exc: BaseException | None) -> str:
        if exc is None:
            return ""
        if self._game_day_abort(exc):
            return f"aborted by the game day: {abort_reason()}"
        return f"{type(exc).__name__}: {exc}"

    def journal_path(self) -> Path:
        return self.stack.run_dir / "journals" / f"{self.name}.json"


def outcome_of(exc: BaseException | None, *, aborted: bool = False) -> str:
    """The journal's outcome for a drill that ended with ``exc`` (None: it ended well)."""
    if exc is None:
        return PASSED
    if isinstance(exc, Inconclusive):
        return INCONCLUSIVE
    if aborted:
        return ABORTED
    return INTERRUPTED if isinstance(exc, KeyboardInterrupt) else FAILED
