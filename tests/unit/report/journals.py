"""Realistic drill journals for the report tests: timelines are real TimelineSample dicts."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from harness.drill.journal import (
    AlertRecord,
    Journal,
    LoadSummary,
    PhaseMark,
    Verdict,
    write_journal,
)
from harness.observe.timeline import (
    BackendSample,
    ClientSample,
    NodeSample,
    TimelineSample,
    WorkerSample,
)

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
RUN_ID = "20231114-221320-abcdef"
KILLED_AT = 10.0
BACK_AT = 30.0
WORKERS = ("http://127.0.0.1:18001", "http://127.0.0.1:18002")


def _nodes(t: float) -> tuple[NodeSample, ...]:
    down = KILLED_AT <= t < BACK_AT
    node2 = (NodeSample("node2", up=False) if down
             else NodeSample("node2", up=True, running=3.0, waiting=0.0, kv_usage=0.2))
    busy = 6.0 if down else 3.0
    return (NodeSample("node1", up=True, running=busy, waiting=busy - 4 if down else 0.0,
                       kv_usage=0.55 if down else 0.25), node2)


def _workers(t: float) -> tuple[WorkerSample, ...]:
    down = KILLED_AT + 2 <= t < BACK_AT + 2
    return tuple(WorkerSample(gateway, worker,
                              healthy=not (down and worker == WORKERS[1]),
                              circuit="open" if down and worker == WORKERS[1] else "closed")
                 for gateway in ("gateway-a", "gateway-b") for worker in WORKERS)


def _client(t: float) -> ClientSample:
    cut = 0.0 if t < KILLED_AT else 4.0
    return ClientSample(requests=100.0 + 4 * t, errors=(("5xx", 2.0), ("stream_cut", cut)),
                        ttft_count=100.0 + 4 * t, ttft_sum=10.0 + t,
                        ttft_mean_s=0.9 if KILLED_AT <= t < KILLED_AT + 3 else 0.12)


def sample(t: float) -> TimelineSample:
    return TimelineSample(
        at=T0 + t, nodes=_nodes(t), workers=_workers(t),
        frontdoor=(BackendSample("gateway-a", "UP"), BackendSample("gateway-b", "UP")),
        client=_client(t), unreachable=("node2",) if KILLED_AT <= t < BACK_AT else ())


def timeline(seconds: float = 45.0, every: float = 0.5) -> tuple[dict[str, object], ...]:
    return tuple(asdict(sample(i * every)) for i in range(int(seconds / every)))


def node_restart(**changes: object) -> Journal:
    fields: dict[str, object] = dict(
        drill="node_restart", run_id=RUN_ID, started_at=T0, ended_at=T0 + 47.5,
        outcome="passed",
        phases=(PhaseMark("start", T0), PhaseMark("steady", T0 + 5),
                PhaseMark("fault applied", T0 + KILLED_AT), PhaseMark("node ready", T0 + BACK_AT),
                PhaseMark("recovered", T0 + 38), PhaseMark("end", T0 + 47.5)),
        measurements={"restart_to_ready_s": 20.0, "recovery_s": 28.25,
                      "detection_lag_s.NodeDown": 3.5, "streams_in_flight_at_fault": 4},
        verdicts=(Verdict("steady state before the fault", True, "ttft p95 0.12s"),
                  Verdict("NodeDown goes firing", True, "after 13.5s"),
                  Verdict("in-flight streams end cleanly", True, "4 of 4 ended with an error")),
        alerts=(AlertRecord("NodeDown", "firing", T0 + 23.5, {"node": "node2"}),
                AlertRecord("NodeDown", "resolved", T0 + 36.0, {"node": "node2"}),
                AlertRecord("GatewayBackendDown", "pending", T0 + 14.0, {})),
        load=(LoadSummary("steady", 40, 40, {}, 0.1, 0.12, 1.4, 210.0, 8.0, 0),
              LoadSummary("fault", 80, 74, {"stream_cut": 4, "5xx": 2}, 0.11, 0.9, 2.8, 190.5,
                          7.1, 6)),
        timeline=timeline())
    fields.update(changes)
    return Journal(**fields)  # type: ignore[arg-type]  # test data, checked by Journal itself


def cancel_storm(**changes: object) -> Journal:
    fields: dict[str, object] = dict(
        drill="cancel_storm", run_id=RUN_ID, started_at=T0 + 100, ended_at=T0 + 130,
        outcome="failed",
        phases=(PhaseMark("start", T0 + 100), PhaseMark("end", T0 + 130)),
        measurements={"wave_1_cancelled": 200},
        verdicts=(Verdict("steady state before the fault", True),
                  Verdict("KV released", False, "node1 kv 0.4 > <script>alert(1)</script>")),
        alerts=(AlertRecord("KVCacheNotReleased", "firing", T0 + 120, {"node": "node1"}),),
        error="DrillFailed: KV released: node1 kv 0.4 > baseline & rising", timeline=())
    fields.update(changes)
    return Journal(**fields)  # type: ignore[arg-type]  # test data, checked by Journal itself


def write_run(run_dir: Path, *journals: Journal) -> Path:
    for journal in journals or (node_restart(), cancel_storm()):
        write_journal(journal, run_dir)
    return run_dir
