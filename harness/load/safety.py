"""Where load may go: loopback, hosts the topology names, or an explicit allowlist.

A drill fires hundreds of requests a second; a typo in a URL must not point
that at somebody else's service. The check runs before any load starts, and so
does a reachability probe that names the URL when nothing answers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx

from harness.errors import ConfigError, HarnessError, Unreachable

PROBE_PATH = "/v1/models"
PROBE_TIMEOUT_S = 5.0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def topology_hosts() -> frozenset[str]:
    """Hosts the default topology names (empty if it cannot be read)."""
    from harness.topology import load_topology

    try:
        return frozenset({load_topology().host})
    except (HarnessError, OSError, ValueError):
        return frozenset()


def check_target(url: str, allow_hosts: Iterable[str] = ()) -> str:
    """Return the target's host, or raise ConfigError if load may not go there."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"target {url!r} is not an http(s) URL", field="target")
    if _is_loopback(host) or host in set(allow_hosts):
        return host
    if host in topology_hosts():
        return host
    raise ConfigError(f"refusing to send load to {host!r} ({url}): only loopback, hosts "
                      "named by the topology, or hosts in an explicit allowlist",
                      field="target")


async def ensure_reachable(client: httpx.AsyncClient, target: str) -> None:
    """Raise Unreachable naming ``target`` if no HTTP server answers there."""
    url = target.rstrip("/") + PROBE_PATH
    try:
        response = await client.get(url, timeout=PROBE_TIMEOUT_S)
        await response.aclose()
    except httpx.HTTPError as exc:
        raise Unreachable(target, f"an OpenAI-compatible server answering GET {PROBE_PATH}",
                          f"{type(exc).__name__}: {exc}") from exc
