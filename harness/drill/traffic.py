"""User traffic that runs through a drill's fault: open-loop arrivals at the front door.

Open loop (a fixed arrival rate) rather than a fixed number of clients always in
flight: closed-loop clients saturate a small host, and then the stack's own recovery
(a node restarting, scrapes, health checks) competes with the load for CPU.
"""

from __future__ import annotations

from harness.drill.run import DrillRun
from harness.load import BackgroundLoad, ClientPolicy, LoadSpec, parse_lengths

WINDOW_S = 300.0  # the longest traffic runs; drills stop it once their checks are done
DRAIN_S = 60.0


def open_loop_traffic(drill: DrillRun, rate_per_s: float, policy: ClientPolicy,
                      output_tokens: int = 32) -> LoadSpec:
    """Bounded in time (``WINDOW_S``) and in count (the rate over that window)."""
    return LoadSpec(target=drill.stack.front_door_url, model=drill.stack.model,
                    max_requests=int(rate_per_s * WINDOW_S), rate=rate_per_s,
                    duration_s=WINDOW_S, drain_s=DRAIN_S,
                    output_len=parse_lengths(str(output_tokens), field_name="output_len"),
                    policy=policy)


def answered_since(load: BackgroundLoad, since: float) -> int:
    """The users' requests sent after ``since`` (epoch) and answered whole."""
    return sum(1 for r in load.results() if r.ok and r.sent_at > since)
