"""One drill run: the record a drill builds as it goes, and the steps every drill shares.

    with DrillRun.open("cancel_storm", stack, config, exporter) as drill:
        drill.ensure_steady()
        ...
        drill.check("generation stopped", flat, "token counters still rising: ...")

Every check is recorded as a verdict; a failed one raises :class:`DrillFailed`
naming the property. Whatever happens, the journal is written on exit.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from harness.drill.config import DrillsConfig
from harness.drill.journal import (
    AlertRecord,
    Journal,
    LoadSummary,
    PhaseMark,
    Verdict,
    write_journal,
)
from harness.errors import DrillFailed, HarnessError, NotReady
from harness.load import (
    BackgroundLoad,
    JsonlSink,
    LoadExporter,
    LoadSpec,
    RequestResult,
    ResultSink,
)
from harness.load.stats import SLO, Window, summarize
from harness.observe import (
    AlertObservation,
    Observer,
    Timeline,
    TimelineSample,
    TimelineTargets,
)
from harness.observe.alerts import AlertState
from harness.stack.stack import Stack

STEADY_PROPERTY = "steady state before the fault"


@dataclass
class DrillRun:
    name: str
    stack: Stack
    config: DrillsConfig
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

    @classmethod
    def open(cls, name: str, stack: Stack, config: DrillsConfig,
             exporter: LoadExporter | None = None) -> DrillRun:
        return cls(name=name, stack=stack, config=config, exporter=exporter)

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

    # -- alerts ---------------------------------------------------------------------------
    def expect_alert(self, name: str, state: AlertState = "firing", *, within: float,
                     labels: Mapping[str, str] | None = None) -> AlertObservation:
        """Wait for an alert state; not seeing it in time fails the drill."""
        prop = f"{name} goes {state}"
        try:
            seen = self.observer.wait_for_alert(name, state, within=within, labels=labels)
        except NotReady as exc:
            self.check(prop, False, str(exc))
            raise  # unreachable: check raised
        self.alerts.append(AlertRecord(name, state, seen.seen_at, dict(seen.labels)))
        self.check(prop, True, f"after {seen.waited_s:.1f}s")
        return seen

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
            goodput_per_s=s.goodput_per_s, retries=s.retries)
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
            ended_at=time.time(), outcome=self._outcome(exc), phases=tuple(self.phases),
            measurements=dict(self.measurements), verdicts=tuple(self.verdicts),
            alerts=tuple(self.alerts), load=tuple(self.loads),
            timeline=tuple(asdict(s) for s in samples),
            error="" if exc is None else f"{type(exc).__name__}: {exc}")

    def _outcome(self, exc: BaseException | None) -> str:
        if exc is None:
            return "passed"
        return "aborted" if self.aborted else "failed"

    def journal_path(self) -> Path:
        return self.stack.run_dir / "journals" / f"{self.name}.json"
