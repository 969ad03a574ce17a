"""``llm-drill load``: argument parsing, errors before load, a real short run."""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
import pytest

from harness.cli import main
from harness.errors import ConfigError, Unreachable
from harness.load import Api, read_jsonl
from harness.load.cli import build_spec, derived_max_requests, register, resolve_choices
from harness.load.spec import MAX_REQUESTS
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
    assert spec.policy.retries.retry_after_jitter == 1.0
    assert spec.policy.timeouts.stream_idle == 3.0
    assert spec.policy.cancel.after_chunks == 5
    assert (spec.output_len.low, spec.output_len.high) == (10, 20)
    assert callable(ns.func)


def test_retry_after_jitter_is_passed_and_checked() -> None:
    ns = parse(*BASE, "--rate", "4", "--retries", "2", "--retry-after-jitter", "0.5")
    assert build_spec(ns).policy.retries.retry_after_jitter == 0.5
    ns = parse(*BASE, "--rate", "4", "--retry-after-jitter", "0")
    assert build_spec(ns).policy.retries.retry_after_jitter == 0.0
    with pytest.raises(ConfigError, match=r"\[retries\.retry_after_jitter\]"):
        build_spec(parse(*BASE, "--rate", "4", "--retry-after-jitter", "11"))


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
    assert "model: tiny (given)" in table and "max requests: 5 (given)" in table


def models_client(*ids: str, status: int = 200) -> httpx.Client:
    """A client whose every GET answers an OpenAI model list of ``ids``."""
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/models"
        return httpx.Response(status, json={"object": "list",
                                            "data": [{"id": i, "object": "model"} for i in ids]})
    return httpx.Client(transport=httpx.MockTransport(answer))


SHAPE = ("--target", "http://127.0.0.1:9", "--duration", "60", "--rate", "5")


def test_the_one_served_model_is_taken_and_said_to_be_found() -> None:
    choices = resolve_choices(parse(*SHAPE, "--max-requests", "10"), models_client("tiny"))
    assert (choices.model, choices.max_requests) == ("tiny", 10)
    assert choices.lines() == ("model: tiny (the one model http://127.0.0.1:9/v1/models lists)",
                               "max requests: 10 (given)")


def test_several_served_models_are_listed_with_the_url() -> None:
    with pytest.raises(ConfigError, match=r"http://127\.0\.0\.1:9/v1/models lists 2 models "
                                          r"\(a, b\); pick one with --model"):
        resolve_choices(parse(*SHAPE), models_client("a", "b"))


def test_no_served_model_is_an_error_naming_the_url() -> None:
    with pytest.raises(ConfigError, match=r"http://127\.0\.0\.1:9/v1/models lists no model"):
        resolve_choices(parse(*SHAPE), models_client())


def test_a_target_that_is_not_a_model_server_is_unreachable() -> None:
    with pytest.raises(Unreachable, match=r"/v1/models is unreachable.*HTTP 404"):
        resolve_choices(parse(*SHAPE), models_client("tiny", status=404))


def test_a_given_model_asks_nothing_of_the_target() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("must not be asked", request=request)

    with httpx.Client(transport=httpx.MockTransport(refuse)) as client:
        choices = resolve_choices(parse(*SHAPE, "--model", "m"), client)
    assert (choices.model, choices.model_origin) == ("m", "given")


def test_model_discovery_never_goes_to_a_host_load_may_not_reach() -> None:
    with pytest.raises(ConfigError, match="refusing to send load"):
        resolve_choices(parse("--target", "http://192.0.2.1:80", "--duration", "5",
                              "--rate", "1"), models_client("tiny"))


def test_the_bound_is_derived_from_rate_and_duration_with_burst_room() -> None:
    choices = resolve_choices(parse(*SHAPE, "--model", "m"))
    assert choices.max_requests == derived_max_requests(5, 60) == 300 + 70 + 1
    assert choices.lines()[1] == "max requests: 371 (derived: rate 5/s x 60 s + 4 sigma)"
    assert build_spec(parse(*SHAPE, "--model", "m")).max_requests == 371


def test_a_derived_bound_is_capped() -> None:
    assert derived_max_requests(10_000, 3_600) == MAX_REQUESTS


def test_a_closed_loop_must_give_its_bound() -> None:
    ns = parse("--target", "http://127.0.0.1:9", "--model", "m", "--duration", "5",
               "--concurrency", "2")
    with pytest.raises(ConfigError, match=r"\[max_requests\].*--concurrency"):
        build_spec(ns)


def test_the_cli_names_the_models_url_when_it_lists_none(
        capsys: pytest.CaptureFixture[str]) -> None:
    with sse_http_server() as url:  # lists no model
        code = main(["load", "--target", url, "--duration", "5", "--rate", "1",
                     "--no-exporter"])
    err = capsys.readouterr().err
    assert code == 2 and f"{url}/v1/models lists no model" in err and "Traceback" not in err
