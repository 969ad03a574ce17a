"""Async streaming load for vLLM stacks: per-request timings, aggregates, exporter.

    spec = LoadSpec(target=url, model="tiny", rate=5, max_requests=200, duration_s=60)
    async with LoadRun(client, spec, sinks=[JsonlSink(path), exporter]) as run:
        ...                                   # inject a fault while load flows
    summary = summarize(run.results(), slo=SLO(ttft_s=0.8))

Timing definitions follow vLLM's benchmark (``vllm bench serve``); see docs/load.md.
"""

from harness.clock import Clock, SystemClock
from harness.load.client import Requester, parse_retry_after
from harness.load.result import (
    CancelReason,
    ErrorInfo,
    ErrorType,
    RequestResult,
    result_from_json,
)
from harness.load.runner import BackgroundLoad, LoadRun, ResultSink, make_client, run_load
from harness.load.safety import check_target, ensure_reachable
from harness.load.sinks import JsonlSink, LoadExporter, default_exporter_port, read_jsonl
from harness.load.spec import (
    Api,
    Arrival,
    CancelPolicy,
    ClientPolicy,
    Lengths,
    LoadSpec,
    RetryPolicy,
    Timeouts,
    cancel_storm_spec,
    parse_lengths,
)
from harness.load.stats import SLO, Stat, Summary, Window, percentile, summarize

__all__ = [
    "SLO",
    "Api",
    "Arrival",
    "BackgroundLoad",
    "CancelPolicy",
    "CancelReason",
    "ClientPolicy",
    "Clock",
    "ErrorInfo",
    "ErrorType",
    "JsonlSink",
    "Lengths",
    "LoadExporter",
    "LoadRun",
    "LoadSpec",
    "RequestResult",
    "Requester",
    "ResultSink",
    "RetryPolicy",
    "Stat",
    "Summary",
    "SystemClock",
    "Timeouts",
    "Window",
    "cancel_storm_spec",
    "check_target",
    "default_exporter_port",
    "ensure_reachable",
    "make_client",
    "parse_lengths",
    "parse_retry_after",
    "percentile",
    "read_jsonl",
    "result_from_json",
    "run_load",
    "summarize",
]
