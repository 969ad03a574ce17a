"""The front door's config: the stack's own request id, its error schema and its
admission control."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from harness.render.templates import render
from harness.topology import Admission, Topology, load_topology

FRONT_DOOR_ERRORS = (500, 502, 503, 504)


def _config(topology: Topology | None = None) -> str:
    return render("haproxy.cfg.j2", topology or load_topology())


def _with_admission(admission: Admission) -> Topology:
    topology = load_topology()
    return replace(topology, front_door=replace(topology.front_door, admission=admission))


def _frontend(config: str) -> str:
    name = load_topology().front_door.name
    return config.split(f"frontend {name}\n", 1)[1].split("\n\n", 1)[0]


def test_the_front_door_replaces_the_clients_request_id_and_keeps_it_visible() -> None:
    frontend = _frontend(_config())
    assert "http-request set-header X-Request-Id %[unique-id]" in frontend
    assert "X-Client-Request-Id %[req.hdr(X-Request-Id)]" in frontend
    assert "http-request capture req.hdr(X-Request-Id)" in frontend
    # the capture and the copy read the client's header before it is replaced
    assert frontend.index("capture") < frontend.index("set-header X-Request-Id")


def test_every_response_carries_the_stack_request_id() -> None:
    config = _config()
    assert "unique-id-format" in config
    assert "http-after-response set-header X-Request-Id %[unique-id]" in _frontend(config)


@pytest.mark.parametrize("status", FRONT_DOOR_ERRORS)
def test_front_door_errors_carry_the_error_schema(status: int) -> None:
    line = re.search(rf"http-error status {status} content-type application/json "
                     r"lf-string '(.*)'$", _config(), re.M)
    assert line is not None, f"no JSON http-error for {status}"
    body = json.loads(line.group(1).replace("%[unique-id]", "fd-1"))
    error = body["error"]
    assert set(error) == {"type", "code", "message", "request_id"}
    assert (error["code"], error["request_id"]) == (status, "fd-1")
    assert error["type"] and error["message"]


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_haproxy_accepts_the_rendered_config(tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(_config())
    checked = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True,
                             text=True, timeout=30, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "WARNING" not in checked.stdout + checked.stderr


def test_each_gateway_is_sent_at_most_its_share_and_the_rest_wait_a_bounded_time() -> None:
    config = _config(_with_admission(Admission(max_per_gateway=5, queue_timeout_s=3)))
    backend = config.split("backend gateways\n", 1)[1]
    assert re.search(r"^\s*default-server .* maxconn 5$", backend, re.M)
    assert re.search(r"^\s*timeout queue 3s$", backend, re.M)


def test_a_full_queue_turns_requests_away_in_the_error_schema_with_retry_after() -> None:
    config = _config(_with_admission(Admission(max_queued=3, retry_after_s=7)))
    line = re.search(r"http-request deny deny_status 429 content-type application/json "
                     r"lf-string '(.*)' hdr Retry-After (\d+) if \{ queue\(gateways\) ge (\d+) \}$",
                     _frontend(config), re.M)
    assert line is not None, "no 429 with Retry-After on a full queue"
    error = json.loads(line.group(1).replace("%[unique-id]", "fd-1"))["error"]
    assert (error["code"], error["request_id"]) == (429, "fd-1")
    assert error["type"] and error["message"]
    assert (line.group(2), line.group(3)) == ("7", "3")
    assert "http-after-response set-header Retry-After 7 if { status 503 }" in _frontend(config)


def test_admission_control_off_leaves_gateways_unlimited() -> None:
    config = _config(_with_admission(Admission(max_per_gateway=0)))
    assert "maxconn" not in config.split("backend gateways\n", 1)[1]
    assert "timeout queue" not in config
    assert "Retry-After" not in config


@pytest.mark.parametrize("bad", [{"max_per_gateway": -1}, {"max_queued": -1},
                                 {"queue_timeout_s": 0}, {"retry_after_s": 0}])
def test_admission_rejects_settings_that_cannot_work(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Admission(**bad)


def test_the_front_door_logs_from_one_thread_so_no_line_is_dropped() -> None:
    """Its log to stdout is what the drills judge requests by; with more than one thread
    HAProxy drops a line whenever another thread holds the log lock."""
    global_section = _config().split("\nglobal\n", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"^\s*log stdout ", global_section, re.M)
    assert re.findall(r"^\s*nbthread (\d+)$", global_section, re.M) == ["1"]
