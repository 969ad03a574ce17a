"""What ``llm-drill status`` shows: each component's pid, ports, health and memory."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import psutil

from harness.stack.components import ComponentSpec
from harness.stack.stack import Stack


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    ports: tuple[int, ...]
    health: str
    rss_bytes: int


def total_rss(pids: tuple[int, ...]) -> int:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue
    return total


def health_of(spec: ComponentSpec, client: httpx.Client) -> str:
    url = spec.ready_url if spec.ready_url.count("/") > 2 else f"{spec.ready_url}/health"
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        return f"down ({type(exc).__name__})"
    return "ok" if response.status_code == 200 else f"HTTP {response.status_code}"


def stack_status(stack: Stack, client: httpx.Client) -> list[ComponentStatus]:
    rows = []
    for name, spec in stack.specs().items():
        pid = stack.pid(name)
        health = health_of(spec, client) if pid else "not running"
        rows.append(ComponentStatus(name, pid, spec.ports, health, total_rss(stack.pids(name))))
    return rows
