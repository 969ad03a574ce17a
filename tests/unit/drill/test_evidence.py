"""What a user saw, judged on the stack's status, request id and error body."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.drill import cut_mid_stream, shed_problem, stack_error_problem, user_outcomes
from harness.load.result import CancelReason, ErrorInfo, ErrorType, RequestResult

OK = RequestResult(request_id="client-1", sent_at=0.0, schedule_lag_s=0.0, ttft_s=0.1,
                   itl_s=(), e2e_s=0.2, elapsed_s=0.2, output_tokens=4, prompt_tokens=3,
                   chunks=4, status=200, stack_request_id="fd-1")
FRONT_DOOR_ERROR = ErrorInfo(kind=ErrorType.SERVER, type="no_gateway_available", code="503",
                             message="no gateway is available", request_id="fd-1")
FRONT_DOOR_503 = replace(OK, status=503, error=FRONT_DOOR_ERROR)
VLLM_400 = replace(OK, status=400, error=ErrorInfo(
    kind=ErrorType.CLIENT, type="BadRequestError", code="400", message="too long"))


@pytest.mark.parametrize("result", [OK, FRONT_DOOR_503, VLLM_400])
def test_successes_and_the_stacks_clean_errors_pass(result: RequestResult) -> None:
    assert stack_error_problem(result) is None


@pytest.mark.parametrize(("result", "problem"), [
    (replace(OK, stack_request_id=None), "without the stack's X-Request-Id"),
    (replace(OK, stack_request_id="client-1"), "echoes the client's own id"),
    (replace(FRONT_DOOR_503, stack_request_id=None), "without the stack's X-Request-Id"),
    (replace(OK, status=None, error=ErrorInfo(kind=ErrorType.TIMEOUT, message="read timeout")),
     "no response from the stack (timeout)"),
    (replace(OK, status=500, error=ErrorInfo(kind=ErrorType.SERVER, message="body is not JSON",
                                             head="Request failed")),
     "not in the error schema"),
    (replace(FRONT_DOOR_503, error=replace(FRONT_DOOR_ERROR, request_id="fd-2")),
     "body names request fd-2"),
    (replace(OK, error=ErrorInfo(kind=ErrorType.STREAM_CUT, type="stream_cut",
                                 message="stream ended without data: [DONE]")),
     "200 then stream_cut"),
])
def test_what_is_not_the_stacks_clean_answer_is_named(result: RequestResult,
                                                      problem: str) -> None:
    found = stack_error_problem(result)
    assert found is not None and problem in found


def test_user_outcomes_count_each_kind_and_leave_deliberate_cancels_out() -> None:
    stopped = replace(OK, cancelled=CancelReason.STOP)
    timed_out = replace(OK, request_id="client-9", status=None,
                        error=ErrorInfo(kind=ErrorType.TIMEOUT, message="read timeout"))
    outcomes = user_outcomes([OK, FRONT_DOOR_503, VLLM_400, stopped, timed_out])
    assert (outcomes.ok, outcomes.clean_errors, outcomes.cancelled) == (1, 2, 1)
    assert outcomes.users == 4
    assert outcomes.unclear == ("client-9: no response from the stack (timeout)",)


CUT = replace(OK, error=ErrorInfo(kind=ErrorType.STREAM_CUT, type="stream_cut",
                                  message="peer closed connection"))


def test_a_cut_stream_is_cut_mid_stream_and_an_http_error_is_not() -> None:
    assert cut_mid_stream(CUT)
    assert not cut_mid_stream(FRONT_DOOR_503)
    assert not cut_mid_stream(OK)


def test_excused_results_are_counted_apart() -> None:
    late_cut = replace(CUT, request_id="client-late", sent_at=10.0)
    outcomes = user_outcomes([OK, CUT, late_cut], excused=lambda r: r.sent_at < 5.0
                             and cut_mid_stream(r))
    assert (outcomes.ok, outcomes.excused, outcomes.users) == (1, 1, 3)
    assert outcomes.unclear == ("client-late: 200 then stream_cut: peer closed connection",)


def test_a_clean_refusal_is_the_stacks_clean_error_saying_when_to_come_back() -> None:
    assert shed_problem(replace(FRONT_DOOR_503, retry_after_s=2.0)) is None
    assert shed_problem(FRONT_DOOR_503) == "503 without Retry-After"
    unclean = shed_problem(replace(FRONT_DOOR_503, stack_request_id=None, retry_after_s=2.0))
    assert unclean is not None and "without the stack's X-Request-Id" in unclean
