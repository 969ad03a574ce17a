"""Cancel storm: hundreds of streams opened through the front door and abandoned after a
few chunks, in waves. Every node must let go: no running or waiting requests, KV back
at baseline, generation stopped (the gateways propagated the disconnects), no leaked
connections at the front door or the fault proxy, and KVCacheNotReleased stays quiet.
"""

from __future__ import annotations

import contextlib
import dataclasses

from harness.drill.run import DrillRun
from harness.drill.steady import ensure_steady
from harness.errors import DrillFailed, NotReady
from harness.load import cancel_storm_spec
from harness.observe import assert_kv_released, node_sources
from harness.observe.metrics import scrape
from harness.waits import Probe, Wait

ALLOWED_ALERTS = {"QueueBacklog", "KVCacheSaturated", "TTFTHigh", "TPSDrop"}


def proxy_connections(drill: DrillRun) -> dict[str, float]:
    """Open connections per fault-proxy route (gateway->node and front door->gateway)."""
    snap = scrape(drill.http, f"{drill.stack.fault_proxy_url}/metrics")
    return {s.labels["proxy"]: s.value for s in snap.get("toxiproxy_proxy_active_connections")}


def front_door_sessions(drill: DrillRun) -> float:
    url = drill.stack.topology.url(drill.stack.topology.front_door.stats_port, "/metrics")
    snap = scrape(drill.http, url)
    return sum(s.value for s in snap.get("haproxy_frontend_current_sessions")
               if s.labels.get("proxy") == drill.stack.topology.front_door.name)


def wait_for_connections_to_close(drill: DrillRun,
                                  before: dict[str, float]) -> dict[str, float]:
    """Idle keep-alive pools drain on their own timers: wait (bounded) for them, then
    return the routes still holding more than ``before`` + slack."""
    slack = drill.config.cancel_storm.connection_slack

    def excess() -> dict[str, float]:
        return {name: count for name, count in proxy_connections(drill).items()
                if count > before.get(name, 0) + slack}

    with contextlib.suppress(NotReady):
        Wait(within=drill.config.cancel_storm.settle_s, interval=0.5).until(
            "connections to close", lambda: Probe(done=not excess(), seen=str(excess())))
    return excess()


def storm_wave(drill: DrillRun, wave: int) -> None:
    cfg = drill.config.cancel_storm
    storm = cancel_storm_spec(drill.stack.front_door_url, drill.stack.model,
                              streams=cfg.streams_per_wave,
                              after_chunks=cfg.chunks_before_cancel,
                              output_tokens=cfg.output_tokens, duration_s=60)
    spec = dataclasses.replace(storm, concurrency=cfg.concurrency)
    results = drill.load(spec).start().wait()
    summary = drill.summarize(f"wave {wave}", results)
    cancelled = sum(1 for r in results if r.cancelled is not None)
    # On a starved host vLLM merges a stream's deltas: a short one can end in fewer
    # chunks than the cancel point. It ended cleanly, but it was not abandoned.
    finished = sum(1 for r in results if r.ok)
    drill.measure(f"wave_{wave}_cancelled", cancelled)
    drill.measure(f"wave_{wave}_finished_first", finished)
    counts = (f"{cancelled} cancelled, {finished} finished before the cancel point, of "
              f"{cfg.streams_per_wave}; errors {summary.errors}")
    drill.check(f"wave {wave}: every stream was opened and ended without error",
                cancelled + finished == cfg.streams_per_wave, counts)
    drill.check(f"wave {wave}: the client abandoned the streams",
                cancelled >= cfg.min_abandoned_ratio * cfg.streams_per_wave,
                f"{counts} (bound {cfg.min_abandoned_ratio:.0%} abandoned)")


def test_cancel_storm(start_drill) -> None:  # type: ignore[no-untyped-def]
    with start_drill("cancel_storm") as drill:
        run_cancel_storm(drill)


def run_cancel_storm(drill: DrillRun) -> None:
    ensure_steady(drill)
    cfg, topology = drill.config.cancel_storm, drill.stack.topology
    connections_before = proxy_connections(drill)
    sessions_before = front_door_sessions(drill)

    drill.phase("fault applied")
    for wave in range(1, cfg.waves + 1):
        storm_wave(drill, wave)
    storm_ended = drill.phase("fault reverted")

    nodes = {n: s for n, s in node_sources(topology, drill.http).items()
             if n in drill.stack.node_names}
    try:
        release = assert_kv_released(nodes, topology.thresholds.kv_release_baseline,
                                     within=cfg.settle_s, flat_for=cfg.flat_window_s)
    except DrillFailed as exc:
        drill.check("KV cache released and generation stopped on every node", False,
                    exc.detail)
        raise
    drill.measure("recovery_s", release.elapsed_s)
    drill.check("KV cache released and generation stopped on every node", True,
                f"within {release.elapsed_s:.2f}s of the last cancel")
    drill.phase("recovered")

    leaked = wait_for_connections_to_close(drill, connections_before)
    drill.check("no leaked connections at the fault proxy", not leaked,
                f"still open after {cfg.settle_s}s: {leaked}, before: {connections_before}")
    sessions = front_door_sessions(drill)
    drill.check("no leaked sessions at the front door",
                sessions <= sessions_before + cfg.connection_slack,
                f"{sessions} open now, {sessions_before} before")
    drill.measure("storm_wall_s", storm_ended - drill.started_at)
    drill.expect_no_unexpected_alerts(ALLOWED_ALERTS)
