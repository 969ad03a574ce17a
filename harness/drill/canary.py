"""A canary rollout with automatic rollback, driven through the gateways' worker API.

The canary node (a second model revision, from the topology) starts on demand, joins
every gateway (``POST /add_worker``), and is compared with a stable node on the same
probes: TTFT p50, tokens per second, errors, and an output check (well-formed
completions of the asked length). A regression beyond the drills config's bounds
rolls it back (``POST /remove_worker``); otherwise it is promoted.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import httpx

from harness.drill.config import HotSwapConfig
from harness.drill.run import DrillRun

PROBE_TOKENS = 16


@dataclass(frozen=True)
class ProbeStats:
    ttft_p50_s: float | None
    tokens_per_s: float
    errors: int
    malformed: int
    probes: int

    @property
    def error_ratio(self) -> float:
        return (self.errors + self.malformed) / max(1, self.probes)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


@dataclass
class _Samples:
    ttfts: list[float] = field(default_factory=list)
    tokens: int = 0
    busy_s: float = 0.0
    errors: int = 0
    malformed: int = 0
    probes: int = 0

    def stats(self) -> ProbeStats:
        return ProbeStats(statistics.median(self.ttfts) if self.ttfts else None,
                          self.tokens / max(self.busy_s, 1e-6), self.errors, self.malformed,
                          self.probes)


def probe_nodes(drill: DrillRun, base_urls: list[str], count: int) -> list[ProbeStats]:
    """``count`` streamed probes per node, interleaved (A B, B A, ...) so that noise
    from the shared host falls on every node alike, not on whichever went last."""
    samples = [_Samples() for _ in base_urls]
    for round_no in range(count):
        order = list(range(len(base_urls)))
        for index in order if round_no % 2 == 0 else order[::-1]:
            _probe_once(drill, base_urls[index], samples[index])
    return [s.stats() for s in samples]


def _probe_once(drill: DrillRun, base_url: str, into: _Samples) -> None:
    into.probes += 1
    began = time.monotonic()
    try:
        ttft, produced = _one_stream(drill, base_url)
    except httpx.HTTPError:
        into.errors += 1
        return
    into.busy_s += time.monotonic() - began
    into.ttfts.append(ttft)
    into.tokens += produced
    into.malformed += produced != PROBE_TOKENS


def _one_stream(drill: DrillRun, base_url: str) -> tuple[float, int]:
    """(TTFT, completion tokens counted from usage) of one streamed probe."""
    body = {"model": drill.stack.model, "prompt": "canary probe", "max_tokens": PROBE_TOKENS,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
    began, ttft, produced = time.monotonic(), 0.0, 0
    with drill.http.stream("POST", f"{base_url}/v1/completions", json=body,
                           timeout=15.0) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: {") and not ttft:
                ttft = time.monotonic() - began
            if '"usage"' in line and '"completion_tokens"' in line:
                produced = int(line.split('"completion_tokens":')[1].split(",")[0].strip("} "))
    return ttft, produced


def analyze(cfg: HotSwapConfig, stable: ProbeStats, canary: ProbeStats) -> Decision:
    """Roll back on errors or malformed output beyond the budget, or on a TTFT regression
    that is both relative (over ``max_ttft_ratio``) and absolute (over ``ttft_slack_s``):
    on a tiny model, 10 ms against 30 ms is scheduler noise, not a slow revision."""
    if canary.ttft_p50_s is None or canary.error_ratio > cfg.max_error_ratio:
        return Decision(False, f"canary errors {canary.errors}, malformed {canary.malformed} "
                               f"of {canary.probes}")
    base = stable.ttft_p50_s or canary.ttft_p50_s
    ratio = canary.ttft_p50_s / max(base, 1e-3)
    slower_by = canary.ttft_p50_s - base
    if ratio > cfg.max_ttft_ratio and slower_by > cfg.ttft_slack_s:
        return Decision(False, f"canary TTFT p50 {canary.ttft_p50_s:.3f}s is {ratio:.1f}x "
                               f"stable's {base:.3f}s (bound {cfg.max_ttft_ratio}x and "
                               f"+{cfg.ttft_slack_s}s)")
    return Decision(True, f"canary TTFT p50 {canary.ttft_p50_s:.3f}s vs {base:.3f}s, "
                          f"{canary.tokens_per_s:.0f} vs {stable.tokens_per_s:.0f} tok/s")


def set_canary_in_rotation(drill: DrillRun, canary: str, joined: bool) -> None:
    """Add the canary to (or remove it from) every gateway's worker list."""
    url = drill.stack.node_proxied_url(canary)
    verb = "add_worker" if joined else "remove_worker"
    for gw in drill.stack.gateway_names:
        response = drill.http.post(f"{drill.stack.gateway_url(gw)}/{verb}",
                                   params={"url": url}, timeout=30.0)
        drill.check(f"{gw} accepts {verb} for the canary", response.status_code == 200,
                    f"HTTP {response.status_code}: {response.text[:160]}")


def gateways_route_to(drill: DrillRun, canary: str) -> bool:
    url = drill.stack.node_proxied_url(canary)
    for gw in drill.stack.gateway_names:
        workers = drill.http.get(f"{drill.stack.gateway_url(gw)}/workers").json()["workers"]
        if any(w["url"] == url for w in workers):
            return True
    return False
