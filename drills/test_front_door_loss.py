"""Front-door loss: HAProxy, the one front door, SIGKILLed under load.

Every user goes through it, so nothing can hide the loss: the properties are how the
users lose and how the stack comes back. The requests the kill touches (in flight at the
kill, or sent while the front door is down) must fail fast and cleanly: a refused or
dropped connection within ``fail_fast_s``, never a client timeout. The stack's
supervisor (never the drill) restarts HAProxy within bound; the front door users reach
afterwards is a new process by its own word (``haproxy_process_start_time_seconds``)
and its own request counter shows the users answered again, each answer carrying the
front door's request id. FrontDoorRestarted fires, is delivered to its receiver through
Alertmanager, and resolves.

The kill is timed by the stack: the front door's own bytes-out counter grew over the
last short reading, so answers are mid-relay when the SIGKILL lands (the users' client,
starved on a loaded host, can find whole answers in its socket buffers that the front
door finished sending seconds before: a CI run killed it then and cut nothing). The kill
took effect when its process died (the fault verifies it) and it touched users'
requests; else INCONCLUSIVE. A production front door is a pair behind a virtual
address or DNS (docs/drills.md): this drill shows what one front door costs.
"""

from __future__ import annotations

from drills.catalogue import Drill, StartDrill
from harness.drill import (
    ClientPolicy,
    KillProcess,
    LoadSpec,
    RequestResult,
    Timeouts,
    await_precondition,
    await_property,
    ensure_steady,
    front_door_counter,
    parse_lengths,
    restarted_by_the_stack,
)
from harness.load.result import ErrorType
from harness.load.runner import BackgroundLoad

ALLOWED_ALERTS = {"FrontDoorRestarted", "ErrorRateHigh", "TTFTHigh", "TPSDrop"}
CLEAN = (ErrorType.CONNECT, ErrorType.STREAM_CUT)  # refused, reset, dropped mid-answer
START_TIME = "haproxy_process_start_time_seconds"
REQUESTS = "haproxy_frontend_http_requests_total"
BYTES_OUT = "haproxy_frontend_bytes_out_total"
#: Growth of the front door's bytes out between two readings that shows answers are being
#: relayed (a streamed token is about 150 bytes; a refusal or a probe's answer far less
#: than a stream's second).
RELAYING_BYTES = 2048


def users(drill: Drill) -> LoadSpec:
    """Open-loop users: closed-loop ones would hammer a refused port in a tight loop."""
    cfg = drill.config.front_door_loss
    window = cfg.traffic_within_s + cfg.restart_within_s + cfg.resume_within_s + 30
    return LoadSpec(target=drill.stack.front_door_url, model=drill.stack.model,
                    rate=cfg.rate_per_s, max_requests=int(cfg.rate_per_s * window),
                    duration_s=window, drain_s=15,
                    output_len=parse_lengths(str(cfg.output_tokens), field_name="output_len"),
                    policy=ClientPolicy(timeouts=Timeouts(connect=2.0, read=10.0)))


def front_door_name(drill: Drill) -> str:
    return drill.stack.topology.front_door.name


def answered_after(results: tuple[RequestResult, ...], since: float) -> list[RequestResult]:
    """Requests sent after ``since`` and answered, with the front door's request id."""
    return [r for r in results if r.sent_at > since and r.ok and r.stack_request_id]


def run_front_door_loss(drill: Drill) -> None:
    ensure_steady(drill)
    cfg = drill.config.front_door_loss
    name = front_door_name(drill)
    load = drill.load(users(drill)).start()
    started = drill.phase("load started")
    await_property(drill, "users are answered through the front door before the fault",
                   cfg.traffic_within_s,
                   lambda: len(answered_after(load.results(), started)) >= cfg.answered)
    born_before = front_door_counter(drill, START_TIME)
    await_relaying_in_flight(drill, load)
    fault = KillProcess(drill.stack, name, restart_within_s=cfg.restart_within_s)
    with fault:
        drill.phase("fault applied")  # once its death was seen: the streams were cut before
    killed_at = fault.observed.applied_at  # the SIGKILL itself (a CI run cut 20 streams
    if killed_at is None:                  # in the 50 ms between the two)
        raise drill.inconclusive("the front door was killed", "the fault sent no signal")
    restarted_by_the_stack(drill, fault, cfg.restart_within_s)
    back_at = fault.observed.reverted_at or drill.phase("front door back")
    born_after = front_door_counter(drill, START_TIME)
    drill.check("users reach a new front door process (its own start time)",
                born_after > born_before,
                f"haproxy_process_start_time_seconds {born_before:.0f} -> {born_after:.0f}")
    await_property(drill, "users are answered again after the restart",
                   cfg.resume_within_s,
                   lambda: len(answered_after(load.results(), back_at)) >= cfg.answered)
    counted = front_door_counter(drill, REQUESTS, proxy="frontdoor")
    drill.measure("front_door_requests_since_restart", counted)
    drill.check("the new front door counts the users' requests (its own counter)",
                counted >= cfg.answered,
                f"{REQUESTS} of the new process: {counted:.0f}")
    load.stop()
    results = load.wait(within=60)
    judge_the_cut(drill, results, killed_at, back_at)
    drill.expect_alert("FrontDoorRestarted", within=cfg.alert_within_s)
    drill.expect_alert("FrontDoorRestarted", "resolved", within=cfg.alert_within_s)
    drill.expect_no_unexpected_alerts(ALLOWED_ALERTS)


def await_relaying_in_flight(drill: Drill, load: BackgroundLoad) -> None:
    """The kill is timed for answers being relayed: at one reading the front door sent
    answers out since the last (its own count) while ``in_flight_at_kill`` users wait on
    theirs (open-loop arrivals leave gaps). Both at once: a CI run saw 2 in flight, then
    relaying 4 s later, by when those had ended, and the kill touched 7 requests and cut
    none (INCONCLUSIVE). Never so within the bound is INCONCLUSIVE, not a pass."""
    cfg = drill.config.front_door_loss
    relay = Relaying(drill)
    await_precondition(
        drill, f"the front door relays answers right before the fault, "
               f"{cfg.in_flight_at_kill} users waiting on theirs",
        cfg.traffic_within_s,
        lambda: relay.grew() and load.in_flight >= cfg.in_flight_at_kill,
        lambda: f"{relay.describe()}; {load.in_flight} in flight")


class Relaying:
    """The front door sends answers out now, by its own count
    (``haproxy_frontend_bytes_out_total``, one fast read of HAProxy's exporter): the
    count grew by :data:`RELAYING_BYTES` since the last reading."""

    def __init__(self, drill: Drill) -> None:
        self.drill = drill
        self.last: float | None = None
        self.relayed = 0.0

    def grew(self) -> bool:
        out = front_door_counter(self.drill, BYTES_OUT, proxy="frontdoor")
        before, self.last = self.last, out
        self.relayed = 0.0 if before is None else out - before
        return self.relayed >= RELAYING_BYTES

    def describe(self) -> str:
        return f"{self.relayed:.0f} bytes out of the front door over the last reading"


def judge_the_cut(drill: Drill, results: tuple[RequestResult, ...], killed_at: float,
                  back_at: float) -> None:
    """The requests the kill touched: in flight at it, or sent while the front door was
    down. Each that failed must have failed cleanly (refused or dropped connection, as
    the stack's dead port produces) and fast (within ``fail_fast_s`` of the kill or of its
    own send, whichever is later): never a client timeout, never a hang."""
    cfg = drill.config.front_door_loss
    touched = [r for r in results if r.sent_at < back_at and r.finished_at > killed_at]
    failed = [r for r in touched if not r.ok and r.cancelled is None]
    drill.measure("requests_touched_by_the_kill", len(touched))
    drill.measure("requests_failed_at_the_kill", len(failed))
    if not failed:
        raise drill.inconclusive("the kill cut users' requests",
                                 f"{len(touched)} requests touched it, none failed")
    unclean = [f"{r.stack_request_id or r.request_id}: {r.error.kind.value if r.error else '?'}"
               for r in failed if r.error is None or r.error.kind not in CLEAN]
    slow = [f"{r.request_id}: {r.finished_at - max(killed_at, r.sent_at):.1f}s"
            for r in failed if r.finished_at - max(killed_at, r.sent_at) > cfg.fail_fast_s]
    drill.check_together(
        ("requests cut by the front door's loss fail cleanly (refused or dropped, never a "
         "timeout)", not unclean, f"{len(unclean)} of {len(failed)}: {unclean[:5]}"),
        ("requests cut by the front door's loss fail fast", not slow,
         f"over {cfg.fail_fast_s:g}s: {slow[:5]} ({len(failed)} failed)"))


def test_front_door_loss(start_drill: StartDrill) -> None:
    with start_drill("front_door_loss") as drill:
        run_front_door_loss(drill)
