"""A node's log names the requests its engine took: parsing it, and the logging config
that makes vLLM write those lines and nothing of a prompt."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from harness.observe.request_log import RequestLog
from harness.render.run_configs import (
    VLLM_REQUEST_LOGGER,
    VLLM_SHUTDOWN_LOGGERS,
    vllm_logging_config,
)

LOG = """\
WARNING 12-05 06:16:40 [api_server.py:88] something the operator should see
INFO 2026-12-05 06:16:42,117 vllm.v1.engine.async_llm Added request cmpl-fd-18a4-0-9c1e.
INFO 2026-12-05 06:16:42,201 vllm.v1.engine.async_llm Added request cmpl-fd-77b0-0-0aa2.
INFO 2026-12-05 06:16:43,001 vllm.v1.engine.async_llm Aborted request(s) cmpl-fd-77b0-0-0aa2.
"""


def test_the_ids_a_node_took_are_read_from_its_log() -> None:
    log = RequestLog.parse("node1", LOG)
    assert log.taken == {"cmpl-fd-18a4-0-9c1e", "cmpl-fd-77b0-0-0aa2"}
    assert log.took("fd-18a4") and log.took("fd-77b0")
    assert log.not_taken(["fd-18a4", "fd-ffff", None, ""]) == ["fd-ffff", None, ""]


def _at(stamp: str) -> float:
    return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))


def test_aborts_of_requests_held_at_a_moment_are_read_with_the_nodes_clock() -> None:
    later = ("INFO 2026-12-05 06:16:43,500 vllm.v1.engine.async_llm "
             "Added request cmpl-fd-9d00-0-77aa.\n"
             "INFO 2026-12-05 06:16:44,000 vllm.v1.engine.async_llm "
             "Aborted request(s) cmpl-fd-9d00-0-77aa, cmpl-fd-18a4-0-9c1e.\n")
    log = RequestLog.parse("node1", LOG + later)
    held_at = _at("2026-12-05 06:16:42") + 0.5  # both first requests taken, none aborted
    assert log.added_at["cmpl-fd-18a4-0-9c1e"] == _at("2026-12-05 06:16:42") + 0.117
    # the one taken after the moment is not held work; each held one aborted after it is
    assert log.aborted_of_those_taken_before(held_at, until=held_at + 10) == [
        "cmpl-fd-18a4-0-9c1e", "cmpl-fd-77b0-0-0aa2"]
    assert log.aborted_of_those_taken_before(held_at, until=held_at + 1) == [
        "cmpl-fd-77b0-0-0aa2"]


def test_when_the_node_took_its_last_requests_is_read_to_the_millisecond() -> None:
    log = RequestLog.parse("node1", LOG)
    second = _at("2026-12-05 06:16:42")
    assert log.last_taken_at() == second + 0.201
    assert log.last_taken_at(before=second + 0.201) == second + 0.117
    assert log.taken_between(second + 0.117, second + 0.201) == ["cmpl-fd-18a4-0-9c1e"]
    assert log.taken_between(second + 0.118, second + 1) == ["cmpl-fd-77b0-0-0aa2"]
    assert log.taken_between(second + 0.202, second + 10) == []
    assert RequestLog.parse("node1", "no request lines").last_taken_at() is None


def test_a_log_without_request_lines_names_nothing() -> None:
    log = RequestLog.parse("node1", "WARNING only warnings here\n")
    assert log.taken == frozenset() and not log.took("fd-18a4")


def test_the_logging_config_lets_through_request_ids_and_warnings_only(tmp_path: Path) -> None:
    config = tmp_path / "vllm-logging.json"
    config.write_text(json.dumps(vllm_logging_config()))
    script = (
        "import json, logging, logging.config, sys\n"
        f"logging.config.dictConfig(json.load(open({str(config)!r})))\n"
        f"logging.getLogger({VLLM_REQUEST_LOGGER!r}).info('Added request cmpl-fd-1.')\n"
        "logging.getLogger('vllm.entrypoints.serve.utils.request_logger')"
        ".info('Received request cmpl-fd-1: params: SamplingParams(stop=[\"secret\"])')\n"
        "logging.getLogger('vllm.v1.metrics.loggers').info('Avg prompt throughput')\n"
        "logging.getLogger('vllm.engine').warning('a warning')\n"
        f"logging.getLogger({VLLM_SHUTDOWN_LOGGERS[0]!r}).info('[shutdown] EngineCore: "
        "start mode=drain timeout=60s')\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    assert out.stdout == ""  # stderr only: line-buffered, nothing lost to a SIGKILL
    assert RequestLog.parse("node1", out.stderr).taken == {"cmpl-fd-1"}
    assert "a warning" in out.stderr
    assert RequestLog.parse("node1", out.stderr).shutdown_after(0.0)[0].endswith(
        "s EngineCore: start mode=drain timeout=60s")
    assert "secret" not in out.stderr and "throughput" not in out.stderr


def test_the_steps_of_a_shutdown_are_read_with_their_time_from_a_moment() -> None:
    shutdown = (
        "INFO 2026-12-05 06:16:44,000 vllm.entrypoints.launchers.launcher "
        "[shutdown] API server: stopping engine client mode=drain timeout=60s\n"
        "INFO 2026-12-05 06:16:44,250 vllm.v1.engine.core [shutdown] EngineCore: "
        "draining in-flight requests count=2 timeout=60s\n"
        "INFO 2026-12-05 06:16:47,500 vllm.v1.engine.core [shutdown] EngineCore: "
        "request processing complete; starting resource teardown\n")
    log = RequestLog.parse("node1", LOG + shutdown)
    signal_at = _at("2026-12-05 06:16:44")
    assert log.shutdown_after(signal_at) == [
        "+0.00s API server: stopping engine client mode=drain timeout=60s",
        "+0.25s EngineCore: draining in-flight requests count=2 timeout=60s",
        "+3.50s EngineCore: request processing complete; starting resource teardown"]
    assert log.shutdown_after(signal_at + 1) == [
        "+2.50s EngineCore: request processing complete; starting resource teardown"]
    assert log.shutdown_after(signal_at, shown=1) == [
        "+0.00s API server: stopping engine client mode=drain timeout=60s"]
    assert RequestLog.parse("node1", LOG).shutdown_after(0.0) == []
