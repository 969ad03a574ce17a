"""What a user saw, judged on what the stack sent back: its status, its request id
(the front door's ``X-Request-Id``) and its error body. Nothing here reads the client's
own bookkeeping (attempts, timeouts, the ids it made)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.load.result import ErrorType, RequestResult

STACK_ERROR_KINDS = frozenset({ErrorType.CLIENT, ErrorType.SERVER})  # the stack said so


def stack_error_problem(result: RequestResult) -> str | None:
    """None when ``result`` is a success or the stack's clean error; else what is wrong.

    Every answer, a success too, carries the stack's own request id in its ``X-Request-Id``
    header: present, and not the client's id echoed back. A clean error is an error
    response (or an error event in the stream) with that id and a body in the error
    schema (type and message); a body that names a ``request_id`` (the front door's own
    errors) must name the header's. No response at all, or a stream that was cut, stalled
    or garbled, is not a clean error: the client saw it, the stack never said it."""
    if result.status is None:
        kind = result.error.kind.value if result.error else "cancelled"
        return f"no response from the stack ({kind})"
    if not result.stack_request_id:
        return f"{result.status} without the stack's X-Request-Id"
    if result.stack_request_id == result.request_id:
        return f"{result.status} echoes the client's own id: the stack made none"
    return None if result.ok else _body_problem(result)


def shed_problem(result: RequestResult) -> str | None:
    """None when ``result`` is a clean refusal: the stack's clean error (see
    :func:`stack_error_problem`) that also says when to come back (``Retry-After``)."""
    problem = stack_error_problem(result)
    if problem is None and result.retry_after_s is None:
        return f"{result.status} without Retry-After"
    return problem


def _body_problem(result: RequestResult) -> str | None:
    error = result.error
    if error is None:
        return f"{result.status} cancelled by the client"
    if error.kind not in STACK_ERROR_KINDS:
        return f"{result.status} then {error.kind.value}: {error.message}"
    if not (error.type and error.message):
        return f"{result.status} body not in the error schema (type, message): {error.head!r}"
    if error.request_id and error.request_id != result.stack_request_id:
        return (f"{result.status} body names request {error.request_id}, "
                f"header {result.stack_request_id}")
    return None


@dataclass(frozen=True)
class UserOutcomes:
    """How many users got a success, the stack's clean error, or neither."""

    ok: int
    clean_errors: int
    unclear: tuple[str, ...]  # "client id: problem", for the report
    cancelled: int = 0  # abandoned by the client on purpose: not judged
    excused: int = 0  # the caller's exception (see :func:`user_outcomes`)

    @property
    def users(self) -> int:
        return self.ok + self.clean_errors + len(self.unclear) + self.excused


def cut_mid_stream(result: RequestResult) -> bool:
    """A 2xx stream that ended before ``[DONE]``: once the status line is sent, closing
    the connection is the only way HTTP lets a proxy say the upstream failed."""
    return (result.status is not None and result.status < 300 and result.error is not None
            and result.error.kind is ErrorType.STREAM_CUT)


def user_outcomes(results: Iterable[RequestResult],
                  excused: Callable[[RequestResult], bool] = lambda r: False) -> UserOutcomes:
    """Tally ``results``; ``excused`` ones (say, streams already flowing when the fault
    hit and cut by it) are counted apart, neither clean nor unclear."""
    ok = clean = cancelled = excused_count = 0
    unclear: list[str] = []
    for result in results:
        if result.cancelled is not None and result.error is None:
            cancelled += 1
            continue
        if excused(result):
            excused_count += 1
            continue
        problem = stack_error_problem(result)
        if problem is not None:
            unclear.append(f"{result.request_id}: {problem}")
        elif result.ok:
            ok += 1
        else:
            clean += 1
    return UserOutcomes(ok, clean, tuple(unclear), cancelled, excused_count)
