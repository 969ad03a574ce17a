"""What the controller reads about a canary and its stable nodes, one analysis step at a time.

Two sources, both taken every step:

* its own **probes**: the seeded prompts, sent with greedy decoding (temperature 0, a
  seed) to the canary and to a stable node over the same path the gateways use (the
  nodes' fault-proxy routes), streamed: TTFT, tokens per second (completion tokens over
  the request's whole time, as a user feels it), errors, and the answer token by token;
* **Prometheus**: vLLM's own view of each node over ``window_s``: TTFT p50 from the
  ``vllm:time_to_first_token_seconds`` histogram, tokens per second of request time
  (``vllm:generation_tokens_total`` over ``vllm:e2e_request_latency_seconds_sum``) and the
  share of ``/v1`` requests answered 5xx (``http_requests_total``).

A node's :class:`Reading` is the worse of the two (higher TTFT, lower TPS, higher error
ratio): the probes see the path (a slow link, an error injected before the engine), vLLM's
metrics see the engine under the real traffic.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from harness.clients.prometheus import PrometheusClient
from harness.errors import QueryError, Unreachable
from harness.topology import RolloutPolicy

WORDS = ("drill", "canary", "stable", "token", "cache", "node", "gateway", "latency", "alert",
         "quick", "brown", "fox", "serving", "models", "operators", "users", "revision")


@dataclass(frozen=True)
class Target:
    """A node the controller probes: its name (the ``node`` label) and its URL."""

    name: str
    url: str


@dataclass(frozen=True)
class ProbeResult:
    """One probe: its timings, its answer token by token, or why it failed."""

    prompt: str
    ttft_s: float | None
    tokens_per_s: float | None
    tokens: tuple[str, ...]
    error: str = ""
    token_ids: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    def same_answer(self, other: ProbeResult) -> bool:
        """Token for token: the token ids when both carry them (vLLM's
        ``return_token_ids``), else the text (streamed chunks may hold several tokens,
        so chunk boundaries are not token boundaries)."""
        if self.token_ids and other.token_ids:
            return self.token_ids == other.token_ids
        return self.text == other.text


@dataclass(frozen=True)
class Reading:
    """One node's signals over one step (None: no data)."""

    ttft_s: float | None
    tokens_per_s: float | None
    error_ratio: float | None

    def worse(self, other: Reading) -> Reading:
        return Reading(_pick(max, self.ttft_s, other.ttft_s),
                       _pick(min, self.tokens_per_s, other.tokens_per_s),
                       _pick(max, self.error_ratio, other.error_ratio))

    def describe(self) -> str:
        return (f"TTFT {_fmt(self.ttft_s, 's')}, {_fmt(self.tokens_per_s, ' tok/s')}, "
                f"errors {_fmt(self.error_ratio, '')}")


def _pick(choose: Callable[[float, float], float], a: float | None,
          b: float | None) -> float | None:
    if a is None or b is None:
        return a if b is None else b
    return choose(a, b)


def _fmt(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{value:.3g}{unit}"


def seeded_prompts(policy: RolloutPolicy) -> tuple[str, ...]:
    """The output check's prompts: the same every step and every run for one seed."""
    rng = random.Random(policy.prompt_seed)
    count = policy.output_prompts
    return tuple(" ".join(rng.choice(WORDS) for _ in range(6)) for _ in range(count))


def reading_from_probes(results: Sequence[ProbeResult]) -> Reading:
    good = [r for r in results if r.ok]
    ttfts = [r.ttft_s for r in good if r.ttft_s is not None]
    rates = [r.tokens_per_s for r in good if r.tokens_per_s is not None]
    return Reading(statistics.median(ttfts) if ttfts else None,
                   statistics.median(rates) if rates else None,
                   (len(results) - len(good)) / len(results) if results else None)


class Prober:
    """Sends one greedy, seeded, streamed completion and times it."""

    def __init__(self, http: httpx.Client, model: str, policy: RolloutPolicy,
                 monotonic: Callable[[], float]) -> None:
        self.http, self.model, self.policy, self.monotonic = http, model, policy, monotonic

    def probe(self, target: Target, prompt: str) -> ProbeResult:
        began = self.monotonic()
        try:
            first, tokens, ids, completion = self._stream(target, prompt, began)
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            return ProbeResult(prompt, None, None, (), f"{type(exc).__name__}: {exc}"[:200])
        if not tokens:
            return ProbeResult(prompt, None, None, (), "no tokens streamed")
        elapsed = max(self.monotonic() - began, 1e-6)
        return ProbeResult(prompt, first, (completion or len(tokens)) / elapsed, tuple(tokens),
                           token_ids=tuple(ids))

    def body(self, prompt: str) -> dict[str, object]:
        p = self.policy
        return {"model": self.model, "prompt": prompt, "max_tokens": p.output_tokens,
                "temperature": 0.0, "seed": p.prompt_seed, "ignore_eos": True, "stream": True,
                "return_token_ids": True, "stream_options": {"include_usage": True}}

    def _stream(self, target: Target, prompt: str,
                began: float) -> tuple[float | None, list[str], list[int], int]:
        first: float | None = None
        tokens: list[str] = []
        ids: list[int] = []
        completion = 0
        with self.http.stream("POST", f"{target.url}/v1/completions", json=self.body(prompt),
                              timeout=self.policy.probe_timeout_s) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                event = _event(line)
                if event is None:
                    continue
                for choice in event.get("choices") or ():
                    first = first if first is not None else self.monotonic() - began
                    tokens.append(str(choice["text"]))
                    ids += [int(i) for i in choice.get("token_ids") or ()]
                completion = int((event.get("usage") or {}).get("completion_tokens") or completion)
        return first, tokens, ids, completion


def _event(line: str) -> dict[str, Any] | None:
    if not line.startswith("data:"):
        return None
    data = line[len("data:"):].strip()
    if not data or data == "[DONE]":
        return None
    event = json.loads(data)
    if not isinstance(event, dict):
        raise ValueError(f"not a JSON object: {data[:80]!r}")
    return event


class PrometheusReadings:
    """vLLM's own signals of a set of nodes over ``window_s``, from Prometheus."""

    def __init__(self, prometheus: PrometheusClient, window_s: int) -> None:
        self.prometheus, self.window = prometheus, f"{window_s}s"

    def read(self, nodes: Sequence[str]) -> Reading:
        sel = f'job="vllm", node=~"{"|".join(nodes)}"'
        w = self.window
        ttft = (f"histogram_quantile(0.5, sum by (le) "
                f"(rate(vllm:time_to_first_token_seconds_bucket{{{sel}}}[{w}])))")
        tps = (f"sum(rate(vllm:generation_tokens_total{{{sel}}}[{w}])) / "
               f"sum(rate(vllm:e2e_request_latency_seconds_sum{{{sel}}}[{w}]))")
        errors = (f'(sum(rate(http_requests_total{{{sel}, handler=~"/v1/.*", status="5xx"}}[{w}]))'
                  f" or vector(0)) / "
                  f'sum(rate(http_requests_total{{{sel}, handler=~"/v1/.*"}}[{w}]))')
        return Reading(self._scalar(ttft), self._scalar(tps), self._scalar(errors))

    def _scalar(self, promql: str) -> float | None:
        try:
            samples = self.prometheus.query(promql)
        except (QueryError, Unreachable):
            return None
        values = [s.value for s in samples if math.isfinite(s.value)]
        return values[0] if values else None
