"""The real stack: a streamed completion through front door -> gateway -> node, a vLLM
metric read back from Prometheus, and the lifecycle of `llm-drill up/status/down`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from harness.stack.processes import group_members, tagged_processes
from harness.stack.stack import Stack
from harness.topology import DEFAULT_STACK_FILE
from harness.waits import Probe, Wait

pytestmark = pytest.mark.stack


def _stream_completion(url: str, model: str) -> tuple[int, list[str], int]:
    """(status, text chunks, completion tokens from the final usage chunk)."""
    body = {"model": model, "prompt": "drill", "max_tokens": 8, "stream": True,
            "ignore_eos": True, "stream_options": {"include_usage": True}}
    chunks: list[str] = []
    tokens = 0
    with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=30) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            chunks += [choice["text"] for choice in event["choices"]]
            tokens = (event.get("usage") or {}).get("completion_tokens", tokens)
    return response.status_code, chunks, tokens


def _vllm_counter(prom: str, metric: str) -> float:
    response = httpx.get(f"{prom}/api/v1/query", params={"query": f"sum({metric})"}, timeout=5)
    result = response.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def test_streamed_completion_through_front_door_shows_in_prometheus(stack: Stack) -> None:
    metric = 'vllm:request_success_total{job="vllm"}'
    before = Wait(within=30, interval=0.5).until("Prometheus to scrape vLLM", lambda: Probe(
        done=True, value=_vllm_counter(stack.prometheus_url, metric)))
    status, chunks, tokens = _stream_completion(stack.front_door_url, stack.model)
    # 8 tokens, streamed; a busy vLLM may merge deltas, so fewer chunks than tokens
    assert status == 200 and tokens == 8 and 1 <= len(chunks) <= 8 and "".join(chunks)
    Wait(within=15, interval=0.5).until_true(
        "vllm:request_success_total to rise in Prometheus",
        lambda: _vllm_counter(stack.prometheus_url, metric) >= (before or 0) + 1)


def test_every_component_runs_in_its_own_group(stack: Stack) -> None:
    """Each supervised component's group is led by its group wrapper (supervisord's
    process for it), with the component's main process in it; no two share a group."""
    groups = {}
    for name in (*stack.node_names, *stack.gateway_names, stack.topology.front_door.name):
        pid = stack.pid(name)
        assert pid is not None and stack.is_running(name), name
        group = os.getpgid(pid)
        leader = Path(f"/proc/{group}/cmdline").read_bytes().split(b"\0")
        assert b"harness.stack.groupwrap" in leader, f"{name}'s group is not its wrapper's"
        assert pid in group_members(group)
        groups[name] = group
    assert len(set(groups.values())) == len(groups), groups


def _small_topology(tmp_path: Path) -> Path:
    """The default topology shrunk to one node and one gateway, on other ports."""
    raw = yaml.safe_load(DEFAULT_STACK_FILE.read_text())
    raw["nodes"], raw["gateways"], raw["canary"] = raw["nodes"][:1], raw["gateways"][:1], None
    for section in raw.values():
        for item in section if isinstance(section, list) else [section]:
            if isinstance(item, dict):
                for key in ("port", "proxy_port", "metrics_port", "stats_port"):
                    if key in item:
                        item[key] += 1000
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _cli(*args: str, home: Path, stack_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", "--stack-file", str(stack_file),
                           "--home", str(home), *args], capture_output=True, text=True,
                          timeout=300, check=False)


def test_cli_up_status_down_leaves_nothing(tmp_path: Path) -> None:
    stack_file, home = _small_topology(tmp_path), tmp_path / "home"
    up = _cli("up", home=home, stack_file=stack_file)
    assert up.returncode == 0, up.stderr[-3000:]
    run_id = (home / "current").read_text().strip()
    status = _cli("status", home=home, stack_file=stack_file)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "node1" in status.stdout and "MiB" in status.stdout
    down = _cli("down", home=home, stack_file=stack_file)
    assert down.returncode == 0, down.stderr
    assert "nothing left running" in down.stderr
    assert tagged_processes(run_id) == []
    assert not (home / "current").exists()
