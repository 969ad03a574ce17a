"""Aggregates: raw-sample percentiles, TPOT, goodput against SLOs, windows, error rates."""

from __future__ import annotations

import dataclasses

import pytest

from harness.load import (
    SLO,
    CancelReason,
    ErrorInfo,
    ErrorType,
    RequestResult,
    Window,
    percentile,
    summarize,
)


def result(sent_at: float = 100.0, ttft: float = 0.1, e2e: float | None = 1.0, tokens: int = 10,
           **overrides: object) -> RequestResult:
    base = RequestResult(request_id=f"r{sent_at}", sent_at=sent_at, schedule_lag_s=0.001,
                         ttft_s=ttft, itl_s=(0.1,) * max(0, tokens - 1), e2e_s=e2e,
                         elapsed_s=e2e or 1.0, output_tokens=tokens, prompt_tokens=5,
                         chunks=tokens, status=200)
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]  # any field, by name


def failed(kind: ErrorType, sent_at: float = 100.0) -> RequestResult:
    return result(sent_at, e2e=0.5, error=ErrorInfo(kind=kind), attempt=None, ttft=0.05)


@pytest.mark.parametrize(("q", "expected"), [(0, 1.0), (50, 3.0), (95, 4.8), (99, 4.96),
                                             (100, 5.0), (25, 2.0), (10, 1.4)])
def test_percentile_interpolates_like_numpy(q: float, expected: float) -> None:
    assert percentile([5.0, 1.0, 4.0, 2.0, 3.0], q) == pytest.approx(expected)


def test_percentile_rejects_nothing_and_bad_q() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_percentiles_come_from_raw_samples() -> None:
    results = [result(100.0 + i, ttft=t) for i, t in enumerate([0.1] * 98 + [5.0, 9.0])]
    summary = summarize(results)
    assert summary.ttft is not None
    assert summary.ttft.p50 == pytest.approx(0.1)
    assert summary.ttft.p99 == pytest.approx(5.0 + 0.01 * 4.0)
    assert summary.ttft.max == 9.0


def test_tpot_follows_vllm() -> None:
    assert result(ttft=0.2, e2e=2.0, tokens=10).tpot_s == pytest.approx(0.2)
    summary = summarize([result(ttft=0.2, e2e=2.0, tokens=10), result(tokens=1)])
    assert summary.tpot is not None and summary.tpot.count == 1
    assert summary.itl is not None and summary.itl.count == 9


def test_throughput_and_goodput_over_the_run() -> None:
    results = [result(100.0, ttft=0.1), result(101.0, ttft=0.9), result(102.0, ttft=0.2),
               failed(ErrorType.SERVER, 103.0)]
    summary = summarize(results, slo=SLO(ttft_s=0.5))
    assert summary.wall_s == pytest.approx(3.5)  # first send 100 -> last finish 103 + 0.5
    assert summary.requests_per_s == pytest.approx(3 / 3.5)
    assert summary.output_tokens_per_s == pytest.approx(30 / 3.5)
    assert summary.good == 2
    assert summary.goodput_per_s == pytest.approx(2 / 3.5)


def test_goodput_needs_every_slo() -> None:
    fast_ttft_slow_tpot = result(ttft=0.1, e2e=9.1, tokens=10)  # tpot 1.0
    summary = summarize([fast_ttft_slow_tpot], slo=SLO(ttft_s=0.5, tpot_s=0.5))
    assert summary.good == 0
    assert summarize([fast_ttft_slow_tpot], slo=SLO(ttft_s=0.5)).good == 1


def test_window_selects_by_send_time_and_sets_wall_time() -> None:
    results = [result(100.0 + i) for i in range(10)]
    summary = summarize(results, window=Window(102.0, 106.0))
    assert summary.requests == 4
    assert summary.wall_s == 4.0
    assert summary.requests_per_s == pytest.approx(1.0)
    with pytest.raises(ValueError, match="empty window"):
        Window(5.0, 5.0)


def test_error_rates_by_type_and_cancellations_apart() -> None:
    results = [result(), failed(ErrorType.TIMEOUT), failed(ErrorType.TIMEOUT),
               failed(ErrorType.CLIENT), result(cancelled=CancelReason.CHUNKS, e2e=None)]
    summary = summarize(results)
    assert summary.failed == 3 and summary.cancelled == 1 and summary.completed == 1
    assert summary.errors == {ErrorType.TIMEOUT: 2, ErrorType.CLIENT: 1}
    assert summary.error_rate == pytest.approx(3 / 5)
    assert summary.error_rate_of(ErrorType.TIMEOUT) == pytest.approx(2 / 5)
    assert summary.error_rate_of(ErrorType.SERVER) == 0.0
    assert summary.ttft is not None and summary.ttft.count == 1  # successful requests only


def test_summary_of_nothing() -> None:
    summary = summarize([])
    assert (summary.requests, summary.wall_s, summary.requests_per_s) == (0, 0.0, 0.0)
    assert summary.ttft is None and summary.error_rate == 0.0
