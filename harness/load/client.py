"""Sending one request: streaming, timing, timeouts, retries and deliberate cancellation.

Timing follows vLLM's benchmark (``vllm bench serve``): a content chunk is an
event carrying ``choices``; TTFT is its first arrival minus the send time, ITL
the gaps between successive content chunks, e2e the last one minus the send
time. Every request ends in exactly one :class:`RequestResult` handed to
``emit``, also when the run cancels it (``cancelled="stopped"``).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
from collections.abc import Callable

import httpx

from harness.clock import Clock
from harness.load.prompts import Plan, request_rng
from harness.load.result import CancelReason, ErrorInfo, ErrorType, RequestResult
from harness.load.spec import LoadSpec
from harness.load.sse import (
    DONE,
    HEAD_BYTES,
    Chunk,
    ProtocolViolationError,
    SSEDecoder,
    error_from_body,
    parse_chunk,
)
from harness.load.stall import LoopWatch, ate_the_budget

ERROR_BODY_LIMIT = 4_096
STACK_REQUEST_ID_HEADER = "X-Request-Id"  # the stack's id on the response (the front door's)
STACK_ABORT = "abort"  # vLLM's finish_reason for a request the engine aborted
ABORTED_MESSAGE = "the stack aborted the completion (finish_reason abort)"
_RETRYABLE = frozenset({ErrorType.TIMEOUT, ErrorType.CONNECT, ErrorType.SERVER,
                        ErrorType.STREAM_CUT})

Emit = Callable[[RequestResult], None]


class _State:
    """The mutable tally of one request while it runs (private; frozen on exit)."""

    def __init__(self, plan: Plan, start: float, sent_at: float, cancel_at: float | None) -> None:
        self.plan, self.start, self.sent_at, self.cancel_at = plan, start, sent_at, cancel_at
        self.attempt = 0
        self.armed_cancel = False
        self.cancelled: CancelReason | None = None
        self.client_stall_s: float | None = None
        self.new_attempt()

    def new_attempt(self) -> None:
        self.attempt += 1
        self.status: int | None = None
        self.stack_request_id: str | None = None
        self.error: ErrorInfo | None = None
        self.retry_after: float | None = None
        self.first: float | None = None
        self.last: float | None = None
        self.gaps: list[float] = []
        self.chunks = 0
        self.completion_tokens: int | None = None
        self.prompt_tokens: int | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.text: list[str] = []
        self.phase_start = 0.0  # when the running timeout was armed (LoopWatch time), its budget
        self.budget: float | None = None

    def on_chunk(self, now: float, chunk: Chunk, keep_text: bool) -> None:
        if chunk.completion_tokens is not None:
            self.completion_tokens = chunk.completion_tokens
        if chunk.prompt_tokens is not None:
            self.prompt_tokens = chunk.prompt_tokens
        if not chunk.has_choices:
            return
        if self.last is None:
            self.first = now
        else:
            self.gaps.append(now - self.last)
        self.last = now
        self.chunks += 1
        self.finish_reason = chunk.finish_reason or self.finish_reason
        if keep_text:
            self.text.append(chunk.text)

    def fail(self, kind: ErrorType, message: str, head: str = "") -> None:
        self.error = ErrorInfo(kind=kind, type=kind.value, message=message, head=head)

    def retryable(self) -> bool:
        if self.error is None or self.chunks or self.cancelled:
            return False
        return self.error.kind in _RETRYABLE or self.status == 429

    @property
    def ok(self) -> bool:
        return self.done and self.error is None and self.cancelled is None

    def result(self, end: float, keep_text: bool) -> RequestResult:
        tokens = self.chunks if self.completion_tokens is None else self.completion_tokens
        return RequestResult(
            request_id=self.plan.request_id, sent_at=self.sent_at,
            schedule_lag_s=max(0.0, self.start - self.plan.intended),
            ttft_s=None if self.first is None else self.first - self.start,
            itl_s=tuple(self.gaps), e2e_s=self._e2e(), elapsed_s=end - self.start,
            output_tokens=tokens, prompt_tokens=self.prompt_tokens, chunks=self.chunks,
            status=self.status, error=self.error, retries=self.attempt - 1,
            attempt=self.attempt if self.ok else None, cancelled=self.cancelled,
            finish_reason=self.finish_reason, prompt_text=self.plan.prompt_text,
            completion_text="".join(self.text) if keep_text else None,
            stack_request_id=self.stack_request_id, client_stall_s=self.client_stall_s,
            retry_after_s=self.retry_after)

    def _e2e(self) -> float | None:
        return self.last - self.start if self.ok and self.last is not None else None


def parse_retry_after(value: str | None, now_wall: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_wall)


async def _read_head(response: httpx.Response, limit: int = ERROR_BODY_LIMIT) -> bytes:
    buffer = b""
    async for raw in response.aiter_bytes():
        buffer += raw
        if len(buffer) >= limit:
            break
    return buffer[:limit]


class Requester:
    """Sends requests of one :class:`LoadSpec` through an injected ``httpx.AsyncClient``."""

    def __init__(self, client: httpx.AsyncClient, spec: LoadSpec, *, clock: Clock,
                 emit: Emit, watch: LoopWatch | None = None) -> None:
        self.client, self.spec, self.clock, self._emit = client, spec, clock, emit
        self._watch = watch or LoopWatch()  # never beaten: it sees no stall
        self._policy = spec.policy
        self._url = spec.url
        self._timeout = httpx.Timeout(None, connect=spec.policy.timeouts.connect)
        self._deadlines = spec.policy.cancel.after_s is not None or any(
            (spec.policy.timeouts.read, spec.policy.timeouts.stream_idle))

    async def send(self, plan: Plan) -> RequestResult:
        """Send ``plan`` (with retries), emit its result and return it."""
        st = self._new_state(plan)
        try:
            await self._attempts(st)
        except asyncio.CancelledError:
            st.cancelled = CancelReason.STOP
            raise
        finally:
            result = st.result(self.clock.now(), self.spec.record_text)
            self._emit(result)
        return result

    def _new_state(self, plan: Plan) -> _State:
        after_s = self._policy.cancel.after_s
        cancel_at = None if after_s is None else asyncio.get_running_loop().time() + after_s
        return _State(plan, self.clock.now(), self.clock.wall(), cancel_at)

    async def _attempts(self, st: _State) -> None:
        retries = self._policy.retries
        rng = request_rng(self.spec.seed + 1, st.plan.index)
        while True:
            await self._attempt(st)
            if st.attempt >= retries.max_attempts or not st.retryable():
                return
            await self.clock.sleep_async(retries.backoff(st.attempt, rng, st.retry_after))
            st.new_attempt()

    def _headers(self, plan: Plan) -> dict[str, str]:
        headers = {"X-Request-Id": plan.request_id, "Content-Type": "application/json"}
        if self._policy.retries.enabled:
            headers["Idempotency-Key"] = f"idem-{plan.request_id}"
        return headers

    async def _attempt(self, st: _State) -> None:
        started = self._watch.now()
        try:
            async with asyncio.timeout(None) as guard:
                await self._exchange(st, guard)
        except TimeoutError:
            self._on_deadline(st)
        except httpx.TimeoutException as exc:
            if not (isinstance(exc, httpx.ConnectTimeout) and self._client_stalled(
                    st, started, self._policy.timeouts.connect)):
                st.fail(ErrorType.TIMEOUT, f"{type(exc).__name__}: {exc}")
        except (httpx.ConnectError, httpx.WriteError) as exc:
            st.fail(ErrorType.CONNECT, f"{type(exc).__name__}: {exc}")
        except (httpx.ReadError, httpx.RemoteProtocolError) as exc:
            kind = ErrorType.CONNECT if st.status is None else ErrorType.STREAM_CUT
            st.fail(kind, f"{type(exc).__name__}: {exc}")
        except httpx.HTTPError as exc:
            st.fail(ErrorType.PROTOCOL, f"{type(exc).__name__}: {exc}")
        except ProtocolViolationError as exc:
            st.fail(ErrorType.PROTOCOL, exc.reason, self._head(st, exc.head))

    def _head(self, st: _State, head: str) -> str:
        """Broken bytes after content began may hold completion text: kept only on opt-in."""
        if st.chunks == 0 or self.spec.record_text:
            return head
        return f"[{len(head)} chars redacted; set record_text to keep]"

    def _client_stalled(self, st: _State, start: float, budget: float | None) -> bool:
        """The timeout that just fired (armed at ``start`` for ``budget``) left the stack
        less than its budget: the client's own stall ate the rest. Recorded as the
        client's, never as the stack's error."""
        if budget is None:
            return False
        stall = ate_the_budget(self._watch, start, budget)
        if stall is None:
            return False
        st.cancelled, st.client_stall_s = CancelReason.CLIENT_STALLED, round(stall, 3)
        return True

    def _on_deadline(self, st: _State) -> None:
        if st.armed_cancel:
            st.cancelled = CancelReason.SECONDS
        elif not self._client_stalled(st, st.phase_start, st.budget):
            phase = "stream idle" if st.status is not None else "read"
            st.fail(ErrorType.TIMEOUT, f"{phase} timeout")

    def _arm(self, guard: asyncio.Timeout, st: _State, *, first: bool) -> None:
        if not self._deadlines:
            return
        timeouts = self._policy.timeouts
        limit = timeouts.read if first else timeouts.stream_idle
        st.phase_start, st.budget = self._watch.now(), limit
        timeout_at = None if limit is None else asyncio.get_running_loop().time() + limit
        st.armed_cancel = st.cancel_at is not None and (
            timeout_at is None or st.cancel_at <= timeout_at)
        guard.reschedule(st.cancel_at if st.armed_cancel else timeout_at)

    async def _exchange(self, st: _State, guard: asyncio.Timeout) -> None:
        self._arm(guard, st, first=True)
        async with self.client.stream("POST", self._url, content=st.plan.body,
                                      headers=self._headers(st.plan),
                                      timeout=self._timeout) as response:
            st.status = response.status_code
            st.stack_request_id = response.headers.get(STACK_REQUEST_ID_HEADER)
            if response.status_code >= 400:
                await self._http_error(st, response)
            elif not self.spec.stream:
                await self._whole(st, response)
            else:
                await self._stream(st, response, guard)

    async def _http_error(self, st: _State, response: httpx.Response) -> None:
        st.error = error_from_body(response.status_code, await _read_head(response))
        st.retry_after = parse_retry_after(response.headers.get("retry-after"),
                                           self.clock.wall())

    async def _whole(self, st: _State, response: httpx.Response) -> None:
        body = (await response.aread()).decode("utf-8", errors="replace")
        try:
            obj = json.loads(body)
            message = obj["choices"][0]["message"]["content"]
        except (ValueError, LookupError, TypeError):
            message = None
        chunk = parse_chunk(body)
        text = message if isinstance(message, str) else chunk.text
        st.on_chunk(self.clock.now(), Chunk(has_choices=chunk.has_choices, text=text,
                                            finish_reason=chunk.finish_reason,
                                            completion_tokens=chunk.completion_tokens,
                                            prompt_tokens=chunk.prompt_tokens),
                    self.spec.record_text)
        st.error, st.done = chunk.error, True
        if st.error is None and chunk.finish_reason == STACK_ABORT:
            st.fail(ErrorType.ABORTED, ABORTED_MESSAGE)

    async def _stream(self, st: _State, response: httpx.Response,
                      guard: asyncio.Timeout) -> None:
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" not in content_type:
            head = (await _read_head(response, HEAD_BYTES)).decode("utf-8", errors="replace")
            raise ProtocolViolationError(f"expected text/event-stream, got {content_type!r}", head)
        if self._cancel_now(st):
            return
        decoder = SSEDecoder()
        async for raw in response.aiter_bytes():
            self._arm(guard, st, first=False)
            for data in decoder.feed(raw):
                if self._event(st, data):
                    return
        if not st.done:
            reason = "inside an event" if decoder.pending else "without data: [DONE]"
            st.fail(ErrorType.STREAM_CUT, f"stream ended {reason}")

    def _event(self, st: _State, data: str) -> bool:
        """Handle one SSE payload; True means stop reading (error or cancel)."""
        if st.done:
            return False
        if data == DONE:
            st.done = True
            return False
        chunk = parse_chunk(data)
        if chunk.error is not None:
            st.error = chunk.error
            return True
        st.on_chunk(self.clock.now(), chunk, self.spec.record_text)
        if chunk.finish_reason == STACK_ABORT:
            st.fail(ErrorType.ABORTED, ABORTED_MESSAGE)
            return True
        return self._cancel_now(st)

    def _cancel_now(self, st: _State) -> bool:
        after = self._policy.cancel.after_chunks
        if after is None or st.chunks < after or st.done:
            return False
        st.cancelled = CancelReason.CHUNKS
        return True
