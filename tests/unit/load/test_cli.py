"""``llm-drill load``: argument parsing, errors before load, a real short run."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness.errors import ConfigError, Unreachable
from harness.load import Api, read_jsonl
from harness.load.cli import build_spec, register
from tests.unit.load.loadfakes import sse_http_server


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="llm-drill")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["load", *argv])


BASE = ("--target", "http://127.0.0.1:9", "--model", "tiny", "--duration", "5",
        "--max-requests", "10")


def test_arguments_build_a_spec() -> None:
    ns = parse(*BASE, "--rate", "4", "--api", "chat", "--retries", "2", "--idle-timeout", "3",
               "--cancel-after-chunks", "5", "--output-len", "uniform:10-20")
    spec = build_spec(ns)
    assert (spec.rate, spec.concurrency, spec.api) == (4.0, None, Api.CHAT)
    assert spec.policy.retries.max_attempts == 3
    assert spec.policy.timeouts.stream_idle == 3.0
    assert spec.policy.cancel.after_chunks == 5
    assert (spec.output_len.low, spec.output_len.high) == (10, 20)
    assert callable(ns.func)


def test_rate_and_concurrency_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(*BASE, "--rate", "1", "--concurrency", "2")
    assert "not allowed with" in capsys.readouterr().err


def test_bad_distribution_names_the_field() -> None:
    ns = parse(*BASE, "--concurrency", "1", "--prompt-len", "normal:5")
    with pytest.raises(ConfigError, match=r"\[prompt_len\]"):
        build_spec(ns)


def test_unreachable_target_is_named_before_load(tmp_path: Path) -> None:
    with sse_http_server() as url:
        pass  # closed: nothing listens there now
    out = tmp_path / "r.jsonl"
    ns = parse("--target", url, "--model", "tiny", "--duration", "5", "--max-requests", "3",
               "--concurrency", "1", "--no-exporter", "--out", str(out))
    with pytest.raises(Unreachable, match=url.replace(".", r"\.")):
        ns.func(ns)
    assert not out.exists() or out.read_text() == ""


def test_a_short_run_writes_results_and_exits_zero(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.jsonl"
    with sse_http_server() as url:
        ns = parse("--target", url, "--model", "tiny", "--duration", "10",
                   "--max-requests", "5", "--concurrency", "2", "--output-len", "3",
                   "--exporter-port", "0", "--out", str(out))
        assert ns.func(ns) == 0
    results = list(read_jsonl(out))
    assert len(results) == 5 and all(r.ok and r.output_tokens == 3 for r in results)
    table = capsys.readouterr().out
    assert "TTFT ms" in table and "requests/s" in table
