from __future__ import annotations

import pytest

from harness.errors import Unreachable
from harness.observe import engine_aborts, parse_metrics, read_engine_requests
from tests.fakes import ScriptedSource

LABELS = 'engine="0",model_name="tiny"'


def accounting(started: float, *, stop: float = 0, length: float = 0, abort: float = 0,
               running: float = 0, waiting: float = 0) -> str:
    return "\n".join([
        "# TYPE vllm:time_to_first_token_seconds histogram",
        f'vllm:time_to_first_token_seconds_bucket{{{LABELS},le="+Inf"}} {started}',
        f"vllm:time_to_first_token_seconds_count{{{LABELS}}} {started}",
        f"vllm:time_to_first_token_seconds_sum{{{LABELS}}} 1.0",
        "# TYPE vllm:request_success counter",
        *(f'vllm:request_success_total{{{LABELS},finished_reason="{reason}"}} {value}'
          for reason, value in (("stop", stop), ("length", length), ("abort", abort))),
        "# TYPE vllm:num_requests_running gauge",
        f"vllm:num_requests_running{{{LABELS}}} {running}",
        "# TYPE vllm:num_requests_waiting gauge",
        f"vllm:num_requests_waiting{{{LABELS}}} {waiting}",
        "",
    ])

def test_started_streams_that_never_finished_and_left_the_engine_were_aborted() -> None:
    before = read_engine_requests({"node1": ScriptedSource([accounting(5, stop=5)]),
                                   "node2": ScriptedSource([accounting(2, length=2)])})
    after = read_engine_requests({"node1": ScriptedSource([accounting(105, stop=7)]),
                                  "node2": ScriptedSource([accounting(52, length=2)])})
    aborts = engine_aborts(before, after)
    assert aborts.by_node == {"node1": 98, "node2": 50}
    assert aborts.total == 148
    assert (aborts.started, aborts.finished, aborts.labelled_aborts) == (150, 2, 0)

def test_streams_run_to_their_length_are_not_aborts() -> None:
    """An intermediary that holds the upstream lets vLLM generate every abandoned
    stream to its end: the count stays flat."""
    before = read_engine_requests({"node1": ScriptedSource([accounting(0)])})
    after = read_engine_requests({"node1": ScriptedSource([accounting(100, length=100)])})
    assert engine_aborts(before, after).total == 0

def test_requests_still_in_the_engine_are_not_counted_as_aborted() -> None:
    before = read_engine_requests({"node1": ScriptedSource([accounting(0)])})
    after = read_engine_requests({"node1": ScriptedSource([accounting(10, running=6,
                                                                      waiting=2)])})
    assert engine_aborts(before, after).total == 2

def test_a_labelled_abort_is_still_an_abort() -> None:
    """A vLLM that counts finished_reason="abort" (0.32 does not) gives the same total."""
    before = read_engine_requests({"node1": ScriptedSource([accounting(0)])})
    after = read_engine_requests({"node1": ScriptedSource([accounting(10, stop=1, abort=9)])})
    aborts = engine_aborts(before, after)
    assert (aborts.total, aborts.labelled_aborts) == (9, 9)
    assert "finished_reason=abort counted 9" in aborts.describe()

def test_missing_accounting_raises_instead_of_reading_zero() -> None:
    text = "\n".join(line for line in accounting(3).splitlines()
                     if "time_to_first_token" not in line)
    assert parse_metrics(text).get("vllm:time_to_first_token_seconds_count") == ()
    with pytest.raises(Unreachable, match="time_to_first_token_seconds_count"):
        read_engine_requests({"node1": ScriptedSource([text])})
