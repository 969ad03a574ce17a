"""The front door for drill authors: everything a drill needs, from one import.

    from harness.drill import DrillRun, Latency, await_property, ensure_steady

A drill is a pytest test in a catalogue (``drills/``): it opens a :class:`DrillRun`,
waits for steady state, puts traffic through a fault and records properties as
verdicts. A catalogue's thresholds are its own frozen dataclasses, loaded with
:func:`load_drill_config`; the library reads only their ``steady`` and ``slo`` sections
(:class:`DrillSettings`). ``tests/unit/drill/test_exports.py`` keeps ``__all__`` exact
and makes sure every fault class is here.
"""

from harness.clients.metrics import quantile_bound, scrape
from harness.drill.canary import (
    RolloutDecision,
    await_decision,
    gateways_route_to,
    gateways_routing_to,
    register_canary,
    rollout_status,
    set_canary_in_rotation,
)
from harness.drill.config import (
    DrillSettings,
    SLOConfig,
    SteadyConfig,
    load_drill_config,
    parse_assignments,
)
from harness.drill.evidence import (
    UserOutcomes,
    cut_mid_stream,
    stack_error_problem,
    user_outcomes,
)
from harness.drill.journal import Journal, LoadSummary, Verdict
from harness.drill.probes import (
    await_precondition,
    await_property,
    await_recovery,
    bytes_answered_by,
    bytes_asked_of,
    completion,
    engine_ttft_buckets,
    every_gateway_sees,
    front_door_counter,
    front_door_state,
    gateway_counter,
    gateway_retries,
    gateways_see,
    hold_fault,
    node_counter,
    recovery_seconds,
    requests_taken_by,
    restarted_by_the_stack,
    streamed_ttft,
    worker_url,
)
from harness.drill.run import STEADY_PROPERTY, DrillRun
from harness.drill.steady import NOT_STEADY, ensure_steady
from harness.drill.traffic import open_loop_traffic
from harness.errors import (
    DrillFailed,
    FaultUnverified,
    Inconclusive,
    NotReady,
    ProbeError,
    Unreachable,
)
from harness.faults import (
    Bandwidth,
    Fault,
    FaultBase,
    HoldUpstreamOnClientClose,
    HttpError,
    Latency,
    LimitData,
    ProxyDisabled,
    ResetPeer,
    Slicer,
    SlowClose,
    SseCut,
    SseStall,
    Timeout,
    ToxicFault,
)
from harness.faults.memory import OOMKillNode
from harness.faults.partition import Partition
from harness.faults.process import KillProcess, PauseProcess, TerminateProcess
from harness.load import (
    ClientPolicy,
    LoadExporter,
    LoadSpec,
    RequestResult,
    RetryPolicy,
    Timeouts,
    cancel_storm_spec,
    parse_lengths,
)
from harness.load.stats import percentile
from harness.observe import (
    EngineAborts,
    EngineRequests,
    KVPeak,
    KVPeakSampler,
    KVRelease,
    MetricsSource,
    assert_kv_released,
    engine_aborts,
    node_sources,
    read_engine_requests,
)
from harness.stack.processes import group_members, tagged_processes
from harness.stack.stack import Stack
from harness.waits import Probe, Wait

__all__ = [
    "NOT_STEADY",
    "STEADY_PROPERTY",
    "Bandwidth",
    "ClientPolicy",
    "DrillFailed",
    "DrillRun",
    "DrillSettings",
    "EngineAborts",
    "EngineRequests",
    "Fault",
    "FaultBase",
    "FaultUnverified",
    "HoldUpstreamOnClientClose",
    "HttpError",
    "Inconclusive",
    "Journal",
    "KVPeak",
    "KVPeakSampler",
    "KVRelease",
    "KillProcess",
    "Latency",
    "LimitData",
    "LoadExporter",
    "LoadSpec",
    "LoadSummary",
    "MetricsSource",
    "NotReady",
    "OOMKillNode",
    "Partition",
    "PauseProcess",
    "Probe",
    "ProbeError",
    "ProxyDisabled",
    "RequestResult",
    "ResetPeer",
    "RetryPolicy",
    "RolloutDecision",
    "SLOConfig",
    "Slicer",
    "SlowClose",
    "SseCut",
    "SseStall",
    "Stack",
    "SteadyConfig",
    "TerminateProcess",
    "Timeout",
    "Timeouts",
    "ToxicFault",
    "Unreachable",
    "UserOutcomes",
    "Verdict",
    "Wait",
    "assert_kv_released",
    "await_decision",
    "await_precondition",
    "await_property",
    "await_recovery",
    "bytes_answered_by",
    "bytes_asked_of",
    "cancel_storm_spec",
    "completion",
    "cut_mid_stream",
    "engine_aborts",
    "engine_ttft_buckets",
    "ensure_steady",
    "every_gateway_sees",
    "front_door_counter",
    "front_door_state",
    "gateway_counter",
    "gateway_retries",
    "gateways_route_to",
    "gateways_routing_to",
    "gateways_see",
    "group_members",
    "hold_fault",
    "load_drill_config",
    "node_counter",
    "node_sources",
    "open_loop_traffic",
    "parse_assignments",
    "parse_lengths",
    "percentile",
    "quantile_bound",
    "read_engine_requests",
    "recovery_seconds",
    "register_canary",
    "requests_taken_by",
    "restarted_by_the_stack",
    "rollout_status",
    "scrape",
    "set_canary_in_rotation",
    "stack_error_problem",
    "streamed_ttft",
    "tagged_processes",
    "user_outcomes",
    "worker_url",
]
