"""What one request did: a frozen record of counts and timings, no text by default.

Times are seconds. ``sent_at`` is wall-clock (epoch) time of the first
attempt's send, so results line up with Prometheus samples; every duration is
measured on a monotonic clock from that same send (retry waits included: this
is what the user felt).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum


class ErrorType(StrEnum):
    """Why a request failed; the ``type`` label of ``llmdrill_client_errors_total``.

    timeout     a connect, read or stream-idle timeout fired
    connect     no HTTP response arrived: connection refused/reset or dropped before headers
    4xx / 5xx   the server answered with that status, or sent an error event in the stream
    stream_cut  a 2xx stream ended before ``data: [DONE]`` (connection closed, truncated event)
    aborted     the stack ended the completion itself with ``finish_reason: "abort"`` (vLLM
                aborting requests at shutdown, or rejecting new ones while it drains): a
                2xx and a clean ``[DONE]``, but the user got no answer
    protocol    the server's bytes were not the OpenAI streaming protocol
    """

    TIMEOUT = "timeout"
    CONNECT = "connect"
    CLIENT = "4xx"
    SERVER = "5xx"
    STREAM_CUT = "stream_cut"
    ABORTED = "aborted"
    PROTOCOL = "protocol"

    @classmethod
    def for_status(cls, status: int) -> ErrorType:
        return cls.SERVER if status >= 500 else cls.CLIENT


class CancelReason(StrEnum):
    """Why the client abandoned a stream on purpose."""

    CHUNKS = "after_chunks"
    SECONDS = "after_seconds"
    STOP = "stopped"
    CLIENT_STALLED = "client_stalled"  # its timeout fired on the client's own stall


@dataclass(frozen=True)
class ErrorInfo:
    """An error in the OpenAI error schema, plus the first bytes when the body was not JSON.

    ``request_id`` is the body's own ``request_id`` (the checklist's error schema, which
    the front door's errors carry); empty when the body had none."""

    kind: ErrorType
    type: str = ""
    code: str = ""
    message: str = ""
    head: str = ""
    request_id: str = ""


@dataclass(frozen=True)
class RequestResult:
    """One request's outcome. ``ok`` means it streamed to ``[DONE]`` without error.

    ``request_id`` is the client's own id (sent as ``X-Request-Id``);
    ``stack_request_id`` is the ``X-Request-Id`` the stack answered with on the last
    attempt (None when no response arrived or it carried none). A request whose timeout
    fired because the client itself stalled is ``cancelled="client_stalled"``: evidence
    of the harness, not of the stack (:mod:`harness.load.stall`). ``retry_after_s`` is
    the ``Retry-After`` (seconds) of the last attempt's error response, None without one."""

    request_id: str
    sent_at: float
    schedule_lag_s: float
    ttft_s: float | None
    itl_s: tuple[float, ...]
    e2e_s: float | None
    elapsed_s: float
    output_tokens: int
    prompt_tokens: int | None
    chunks: int
    status: int | None
    error: ErrorInfo | None = None
    retries: int = 0
    attempt: int | None = 1
    cancelled: CancelReason | None = None
    finish_reason: str | None = None
    prompt_text: str | None = None
    completion_text: str | None = None
    stack_request_id: str | None = None
    client_stall_s: float | None = None  # cancelled client_stalled: the stall that did it
    retry_after_s: float | None = None  # the last attempt's Retry-After, if it sent one

    @property
    def ok(self) -> bool:
        return self.error is None and self.cancelled is None

    @property
    def finished_at(self) -> float:
        return self.sent_at + self.elapsed_s

    @property
    def tpot_s(self) -> float | None:
        """(e2e - TTFT) / (output tokens - 1), as in vLLM's benchmark."""
        if self.e2e_s is None or self.ttft_s is None or self.output_tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)

    def to_json(self) -> str:
        """One JSON object on one line; text fields are left out when not recorded."""
        data = asdict(self)
        for key in ("prompt_text", "completion_text"):
            if data[key] is None:
                del data[key]
        return json.dumps(data, separators=(",", ":"), sort_keys=True)


def result_from_json(line: str) -> RequestResult:
    """Inverse of :meth:`RequestResult.to_json` (reads a JSONL results file back)."""
    data = json.loads(line)
    error = data.pop("error")
    data["itl_s"] = tuple(data["itl_s"])
    if data["cancelled"] is not None:
        data["cancelled"] = CancelReason(data["cancelled"])
    if error is not None:
        error["kind"] = ErrorType(error["kind"])
        data["error"] = ErrorInfo(**error)
    return RequestResult(**data)
