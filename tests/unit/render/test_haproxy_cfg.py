"""The front door's config: the stack's own request id and its error schema."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.render.templates import render
from harness.topology import load_topology

FRONT_DOOR_ERRORS = (500, 502, 503, 504)


def _config() -> str:
    return render("haproxy.cfg.j2", load_topology())


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
