"""The rollout controller's HTTP server and its analysis loop.

Run as ``python -m harness.rollout --host H --port P --prometheus URL --gateway URL
[--gateway URL ...] --model NAME [--interval-s 2 --analysis-steps 5 ...]`` (one flag per
field of :class:`~harness.topology.RolloutPolicy`, rendered from the stack file). It serves:

* ``POST /canaries``         start analysing a canary: ``{"name", "url", "stable":
  [{"name", "url"}, ...]}`` (201 with its state);
* ``GET /canaries/<name>``   its state: ``analysing``, ``promoted`` or ``rolled_back``,
  ``reason``, ``started_at``, ``decided_at`` (unix time), ``removed_from``, ``steps``;
* ``POST /shadow``           ``{"canary", "prompt"}``: stable's answer is returned, the same
  request is mirrored to the canary afterwards and compared (counted on ``/metrics``);
* ``GET /metrics``           ``llmdrill_rollout_*``;
* ``GET /healthz``           ``ok``.

It binds loopback by default. It can take any worker out of the gateways, so with a token
(``LLM_DRILL_ROLLOUT_TOKEN`` in its environment) every request but ``GET /healthz`` and
``GET /metrics`` must carry it as a bearer token, and any other bind address without one
is refused (:mod:`harness.auth`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import time
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client import CollectorRegistry, generate_latest

from harness.auth import ROLLOUT_TOKEN_ENV, token_from_env
from harness.clients.prometheus import PrometheusClient
from harness.clock import SystemClock
from harness.errors import HarnessError
from harness.rollout.controller import CanarySpec, Controller, Rollout
from harness.rollout.gateways import Gateways
from harness.rollout.signals import Prober, PrometheusReadings, Target
from harness.service import PROMETHEUS_TEXT, GuardedHandler, GuardedServer
from harness.topology import RolloutPolicy


def rollout_json(rollout: Rollout) -> dict[str, Any]:
    body = dataclasses.asdict(rollout)
    body["name"] = rollout.spec.name
    body["state"] = rollout.state.value
    return body


def canary_from_json(body: Any) -> CanarySpec:
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    stable = tuple(Target(str(s["name"]), str(s["url"])) for s in body.get("stable") or ())
    return CanarySpec(str(body.get("name") or ""), str(body.get("url") or ""), stable)


class _Handler(GuardedHandler):
    server: _Server

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if not self.authorized(path):
            return
        try:
            body = json.loads(self.read_body())
            if path == "/canaries":
                rollout = self.server.controller.register(canary_from_json(body))
                self.send_json(HTTPStatus.CREATED, rollout_json(rollout))
            elif path == "/shadow":
                self._shadow(body)
            else:
                self.send_json(HTTPStatus.NOT_FOUND, {"error": f"unknown path {path}"})
        except (ValueError, KeyError, TypeError) as exc:
            self.send_json(HTTPStatus.BAD_REQUEST, {"error": f"bad request: {exc}"})

    def _shadow(self, body: Any) -> None:
        controller = self.server.controller
        name, prompt = str(body["canary"]), str(body["prompt"])
        served = controller.answer(name, prompt)
        self.send_json(HTTPStatus.OK if served.ok else HTTPStatus.BAD_GATEWAY,
                       {"text": "".join(served.tokens), "error": served.error})
        threading.Thread(target=controller.mirror, args=(name, served), daemon=True).start()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if not self.authorized(path):
            return
        controller = self.server.controller
        if path.startswith("/canaries/"):
            rollout = controller.status(path.removeprefix("/canaries/"))
            if rollout is None:
                self.send_json(HTTPStatus.NOT_FOUND, {"error": "no such canary"})
            else:
                self.send_json(HTTPStatus.OK, rollout_json(rollout))
        elif path == "/healthz":
            self.send_body(HTTPStatus.OK, b"ok\n", "text/plain")
        elif path == "/metrics":
            self.send_body(HTTPStatus.OK, generate_latest(self.server.registry),
                           PROMETHEUS_TEXT)
        else:
            self.send_json(HTTPStatus.NOT_FOUND, {"error": f"unknown path {path}"})


class _Server(GuardedServer):
    def __init__(self, address: tuple[str, int], controller: Controller,
                 registry: CollectorRegistry, token: str | None) -> None:
        super().__init__("the rollout controller", address, _Handler, token,
                         ROLLOUT_TOKEN_ENV)
        self.controller, self.registry = controller, registry


class RolloutServer:
    """The HTTP API on a background thread and the analysis loop on another."""

    def __init__(self, host: str, port: int, controller: Controller,
                 registry: CollectorRegistry, *, token: str | None = None) -> None:
        self._server = _Server((host, port), controller, registry, token)
        self.controller = controller
        self._stop = threading.Event()
        self._loop = threading.Thread(target=self._analyse, name="rollout-analysis",
                                      daemon=True)

    @property
    def url(self) -> str:
        return self._server.url

    def serve_forever(self) -> None:
        self._loop.start()
        try:
            self._server.serve_forever()
        finally:
            self._stop.set()
            self._server.server_close()

    def shutdown(self) -> None:
        """Stop serving (from another thread); ``serve_forever`` then returns."""
        self._server.shutdown()

    def _analyse(self) -> None:
        while not self._stop.wait(self.controller.policy.interval_s):
            self.controller.step()


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.rollout",
                                     description="llm-drill's rollout controller")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL")
    parser.add_argument("--gateway", action="append", default=[], help="a gateway's base URL")
    parser.add_argument("--model", required=True, help="served model name for probes")
    for f in dataclasses.fields(RolloutPolicy):
        kind = int if f.type in (int, "int") else float
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default)
    return parser.parse_args(argv)


def _policy(args: argparse.Namespace) -> RolloutPolicy:
    fields = dataclasses.fields(RolloutPolicy)
    return RolloutPolicy(**{f.name: getattr(args, f.name) for f in fields})


def build_controller(args: argparse.Namespace, http: httpx.Client,
                     registry: CollectorRegistry) -> Controller:
    policy, clock = _policy(args), SystemClock()
    prober = Prober(http, args.model, policy, time.monotonic)
    prometheus = PrometheusReadings(PrometheusClient(args.prometheus, http, timeout=3.0),
                                    policy.window_s)
    return Controller(policy, prober, prometheus, Gateways(args.gateway, http, clock), clock,
                      registry=registry)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    registry = CollectorRegistry()
    with httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0)) as http:
        try:
            server = RolloutServer(args.host, args.port,
                                   build_controller(args, http, registry), registry,
                                   token=token_from_env(ROLLOUT_TOKEN_ENV))
        except HarnessError as exc:
            print(f"rollout: cannot start: {exc}", file=sys.stderr)
            return 1
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            return 0
    return 0
