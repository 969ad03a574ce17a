"""JSONL results file and the client-side Prometheus exporter."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from harness.load import (
    CancelReason,
    ErrorInfo,
    ErrorType,
    JsonlSink,
    LoadExporter,
    RequestResult,
    default_exporter_port,
    read_jsonl,
)
from harness.topology import load_topology

OK = RequestResult(request_id="a-1", sent_at=1.7e9, schedule_lag_s=0.0, ttft_s=0.05,
                   itl_s=(0.02, 0.03), e2e_s=0.1, elapsed_s=0.12, output_tokens=3,
                   prompt_tokens=4, chunks=3, status=200, finish_reason="length")
FAILED = dataclasses.replace(OK, request_id="a-2", error=ErrorInfo(
    kind=ErrorType.SERVER, type="InternalServerError", code="500", message="dead"),
    attempt=None, e2e_s=None, retries=2, status=503, retry_after_s=2.0)
CANCELLED = dataclasses.replace(OK, request_id="a-3", cancelled=CancelReason.CHUNKS, e2e_s=None)


def test_jsonl_round_trips_one_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "results.jsonl"
    with JsonlSink(path) as sink:
        for r in (OK, FAILED, CANCELLED):
            sink.record(r)
    lines = path.read_text().splitlines()
    assert len(lines) == 3
    assert json.loads(lines[1])["error"]["kind"] == "5xx"
    assert list(read_jsonl(path)) == [OK, FAILED, CANCELLED]


def test_a_results_line_without_retry_after_still_reads(tmp_path: Path) -> None:
    """Files written before ``retry_after_s`` existed read back with None."""
    data = json.loads(FAILED.to_json())
    assert data["retry_after_s"] == 2.0
    del data["retry_after_s"]
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(data) + "\n")
    assert list(read_jsonl(path)) == [dataclasses.replace(FAILED, retry_after_s=None)]


def test_jsonl_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    for _ in range(2):
        with JsonlSink(path) as sink:
            sink.record(OK)
    assert len(list(read_jsonl(path))) == 2


def test_exporter_counts_requests_errors_and_latencies() -> None:
    exporter = LoadExporter()
    for r in (OK, FAILED, CANCELLED):
        exporter.record(r)
    value = exporter.registry.get_sample_value
    assert value("llmdrill_client_requests_total") == 3
    assert value("llmdrill_client_errors_total", {"type": "5xx"}) == 1
    assert value("llmdrill_client_errors_total", {"type": "timeout"}) == 0  # pre-created
    assert value("llmdrill_client_ttft_seconds_count") == 1  # successful requests only
    assert value("llmdrill_client_ttft_seconds_bucket", {"le": "0.05"}) == 1
    assert value("llmdrill_client_tpot_seconds_sum") == (0.1 - 0.05) / 2


def test_exporter_serves_the_contract_names_on_a_port() -> None:
    with LoadExporter().serve(0) as exporter:
        exporter.record(OK)
        text = httpx.get(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5).text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"llmdrill_client_ttft_seconds", "llmdrill_client_tpot_seconds",
            "llmdrill_client_requests", "llmdrill_client_errors"} <= names
    assert "llmdrill_client_requests_total 1.0" in text
    types = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert types["llmdrill_client_ttft_seconds"] == "histogram"


def test_default_port_comes_from_the_topology() -> None:
    assert default_exporter_port() == load_topology().load_exporter.port
