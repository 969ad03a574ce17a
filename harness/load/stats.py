"""Aggregates over results: pure functions, any time window, vLLM benchmark definitions.

Definitions follow vLLM's ``vllm bench serve`` (``vllm/benchmarks/serve.py``):

* TTFT  = first content chunk - send time (successful requests)
* ITL   = every gap between successive content chunks, pooled over requests
* TPOT  = (e2e - TTFT) / (output tokens - 1), requests with more than one output token
* e2e   = last content chunk - send time
* throughput = completed requests (output tokens) / wall time
* goodput    = requests meeting every SLO / wall time
* percentiles from raw samples with linear interpolation (``numpy.percentile``'s default)

The window selects requests by ``sent_at`` (wall clock, half-open ``[start, end)``);
its wall time is ``end - start``, or without a window the span from the first
send to the last finish.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from harness.load.result import ErrorType, RequestResult


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation, like numpy's default."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Stat:
    """Distribution of one measurement over raw samples (seconds)."""

    count: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stat | None:
        if not samples:
            return None
        return cls(count=len(samples), mean=sum(samples) / len(samples),
                   p50=percentile(samples, 50), p95=percentile(samples, 95),
                   p99=percentile(samples, 99), max=max(samples))


@dataclass(frozen=True)
class SLO:
    """Per-request service levels for goodput; ``None`` means not checked."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None

    def met_by(self, result: RequestResult) -> bool:
        if not result.ok:
            return False
        checks = ((self.ttft_s, result.ttft_s), (self.tpot_s, result.tpot_s),
                  (self.e2e_s, result.e2e_s))
        return all(limit is None or (value is not None and value <= limit)
                   for limit, value in checks)


@dataclass(frozen=True)
class Window:
    """A half-open wall-clock interval ``[start, end)`` over ``sent_at``."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"empty window [{self.start}, {self.end})")

    def holds(self, result: RequestResult) -> bool:
        return self.start <= result.sent_at < self.end


@dataclass(frozen=True)
class Summary:
    """Aggregates over one set of results."""

    requests: int
    completed: int
    cancelled: int
    failed: int
    wall_s: float
    output_tokens: int
    ttft: Stat | None
    itl: Stat | None
    tpot: Stat | None
    e2e: Stat | None
    schedule_lag: Stat | None
    requests_per_s: float
    output_tokens_per_s: float
    goodput_per_s: float
    good: int
    retries: int
    errors: Mapping[ErrorType, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def error_rate(self) -> float:
        """Failed requests / requests (cancelled-on-purpose ones are not failures)."""
        return self.failed / self.requests if self.requests else 0.0

    def error_rate_of(self, kind: ErrorType) -> float:
        return self.errors.get(kind, 0) / self.requests if self.requests else 0.0


def select(results: Iterable[RequestResult], window: Window | None) -> list[RequestResult]:
    return [r for r in results if window is None or window.holds(r)]


def wall_time(results: Sequence[RequestResult], window: Window | None) -> float:
    if window is not None:
        return window.end - window.start
    if not results:
        return 0.0
    return max(r.finished_at for r in results) - min(r.sent_at for r in results)


def _per_s(count: float, wall: float) -> float:
    return count / wall if wall > 0 else 0.0


def summarize(results: Iterable[RequestResult], *, window: Window | None = None,
              slo: SLO | None = None) -> Summary:
    """Aggregate ``results`` sent inside ``window`` (all when None) against ``slo``."""
    chosen = select(results, window)
    ok = [r for r in chosen if r.ok]
    wall = wall_time(chosen, window)
    tokens = sum(r.output_tokens for r in ok)
    good = sum(1 for r in ok if (slo or SLO()).met_by(r))
    errors = Counter(r.error.kind for r in chosen if r.error is not None)
    return Summary(
        requests=len(chosen), completed=len(ok),
        cancelled=sum(1 for r in chosen if r.cancelled is not None),
        failed=sum(errors.values()), wall_s=wall, output_tokens=tokens,
        ttft=Stat.of([r.ttft_s for r in ok if r.ttft_s is not None]),
        itl=Stat.of([gap for r in ok for gap in r.itl_s]),
        tpot=Stat.of([t for r in ok if (t := r.tpot_s) is not None]),
        e2e=Stat.of([r.e2e_s for r in ok if r.e2e_s is not None]),
        schedule_lag=Stat.of([r.schedule_lag_s for r in chosen]),
        requests_per_s=_per_s(len(ok), wall), output_tokens_per_s=_per_s(tokens, wall),
        goodput_per_s=_per_s(good, wall), good=good,
        retries=sum(r.retries for r in chosen), errors=MappingProxyType(dict(errors)))
