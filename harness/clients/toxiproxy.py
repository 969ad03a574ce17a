"""A thin typed client for the Toxiproxy HTTP API (real Toxiproxy or ours).

Why not ``toxiproxy-python``, the official Python client? (It is a dev
dependency: ``tests/conformance/test_official_client.py`` drives the embedded
server with it, so users' scripts are known to work.) Checked on version 0.1.1,
the latest: it calls ``requests`` module functions
with a host and port held in *class attributes* of ``APIConsumer`` (global
state shared by every caller), so it cannot take an injected
``httpx.Client`` (no ``MockTransport`` unit tests, no shared timeouts); it
ships no type information (no ``py.typed``, no annotations); it depends on
the Python 2 compatibility package ``future``; and its repository
(github.com/douglas/toxiproxy-python) has had no commit since February 2019.
This client is ~200 lines over an injected ``httpx.Client`` and returns
frozen dataclasses.

Errors are mapped at the boundary:

* a 400 (bad body, unknown toxic type, invalid stream) -> :class:`ConfigError`;
* any other failure of a call that applies or inspects a fault ->
  :class:`FaultApplyError`; of a call that reverts one (remove a toxic,
  delete a proxy, reset) -> :class:`FaultRevertError`.

The server's ``{"error": ..., "status": ...}`` message is kept in the text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import httpx

from harness.auth import TOXIPROXY_TOKEN_ENV, bearer_headers, token_from_env
from harness.errors import ConfigError, FaultApplyError, FaultRevertError

Stream = Literal["upstream", "downstream"]
AttributeValue = int | float | str | bool
Phase = Literal["apply", "revert"]


@dataclass(frozen=True)
class Toxic:
    """A toxic as the server reports it."""

    name: str
    type: str
    stream: Stream
    toxicity: float
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Proxy:
    """A proxy as the server reports it (``listen`` is the bound address)."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


@dataclass(frozen=True)
class ProxySpec:
    """A proxy to create (``POST /proxies`` or ``/populate``)."""

    name: str
    upstream: str
    listen: str = "127.0.0.1:0"
    enabled: bool = True


@dataclass(frozen=True)
class ToxicSpec:
    """A toxic to add; ``name`` defaults server-side to ``<type>_<stream>``."""

    type: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict, hash=False)
    stream: Stream = "downstream"
    toxicity: float = 1.0
    name: str = ""

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"type": self.type, "stream": self.stream,
                                   "toxicity": self.toxicity,
                                   "attributes": dict(self.attributes)}
        if self.name:
            body["name"] = self.name
        return body


def _toxic(raw: Mapping[str, object]) -> Toxic:
    attributes = raw.get("attributes") or {}
    stream = raw.get("stream")
    toxicity = raw.get("toxicity", 1.0)
    if stream not in ("upstream", "downstream") or not isinstance(attributes, dict):
        raise ValueError(f"malformed toxic {raw!r}")
    if not isinstance(toxicity, int | float):
        raise ValueError(f"malformed toxicity in {raw!r}")
    return Toxic(str(raw["name"]), str(raw["type"]), stream, float(toxicity),
                 {str(k): v for k, v in attributes.items()})


def _proxy(raw: Mapping[str, object]) -> Proxy:
    toxics = raw.get("toxics") or []
    if not isinstance(toxics, list):
        raise ValueError(f"malformed proxy {raw!r}")
    return Proxy(str(raw["name"]), str(raw["listen"]), str(raw["upstream"]),
                 bool(raw["enabled"]), tuple(_toxic(t) for t in toxics))


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return response.text.strip()


class ToxiproxyClient:
    """Calls the Toxiproxy API through an injected ``httpx.Client``.

    ``base_url`` defaults to the client's own ``base_url``. Every call carries
    ``Authorization: Bearer <token>``; ``token=None`` reads
    ``TOXIPROXY_AUTH_TOKEN`` (Toxiproxy's variable; none sent when unset).
    """

    def __init__(self, http: httpx.Client, base_url: str | None = None, *,
                 token: str | None = None) -> None:
        self._http = http
        self._base = (base_url if base_url is not None else str(http.base_url)).rstrip("/")
        self._auth = bearer_headers(token or token_from_env(TOXIPROXY_TOKEN_ENV))

    @property
    def base_url(self) -> str:
        return self._base

    # -- plumbing ------------------------------------------------------------
    def _call(self, method: str, path: str, phase: Phase, body: object = None,
              expect: Sequence[int] = (200,)) -> httpx.Response:
        url = f"{self._base}{path}"
        error = FaultApplyError if phase == "apply" else FaultRevertError
        content = None if body is None else json.dumps(body).encode()
        headers = self._auth | ({"Content-Type": "application/json"} if content is not None else {})
        try:
            response = self._http.request(method, url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise error(f"toxiproxy {method} {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code in expect:
            return response
        text = (f"toxiproxy {method} {path} answered {response.status_code}: "
                f"{_server_message(response)}")
        raise (ConfigError(text) if response.status_code == 400 else error(text))

    def _json(self, response: httpx.Response, phase: Phase) -> object:
        try:
            return response.json()
        except ValueError as exc:
            error = FaultApplyError if phase == "apply" else FaultRevertError
            raise error(f"toxiproxy answered non-JSON: {response.text[:200]!r}") from exc

    def _parse_proxy(self, response: httpx.Response) -> Proxy:
        raw = self._json(response, "apply")
        try:
            assert isinstance(raw, dict)
            return _proxy(raw)
        except (AssertionError, KeyError, ValueError) as exc:
            raise FaultApplyError(f"toxiproxy answered a malformed proxy: {raw!r}") from exc

    def _parse_toxic(self, response: httpx.Response, phase: Phase = "apply") -> Toxic:
        raw = self._json(response, phase)
        try:
            assert isinstance(raw, dict)
            return _toxic(raw)
        except (AssertionError, KeyError, ValueError) as exc:
            raise FaultApplyError(f"toxiproxy answered a malformed toxic: {raw!r}") from exc

    # -- server --------------------------------------------------------------
    def version(self) -> str:
        raw = self._json(self._call("GET", "/version", "apply"), "apply")
        return str(raw.get("version", "")) if isinstance(raw, dict) else str(raw)

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset", "revert", expect=(204,))

    # -- proxies ---------------------------------------------------------------
    def proxies(self) -> dict[str, Proxy]:
        raw = self._json(self._call("GET", "/proxies", "apply"), "apply")
        if not isinstance(raw, dict):
            raise FaultApplyError(f"toxiproxy answered a malformed proxy list: {raw!r}")
        return {str(name): _proxy(p) for name, p in raw.items()}

    def proxy(self, name: str) -> Proxy:
        return self._parse_proxy(self._call("GET", f"/proxies/{name}", "apply"))

    def create_proxy(self, spec: ProxySpec) -> Proxy:
        body = {"name": spec.name, "upstream": spec.upstream, "listen": spec.listen,
                "enabled": spec.enabled}
        return self._parse_proxy(self._call("POST", "/proxies", "apply", body, expect=(201,)))

    def populate(self, specs: Sequence[ProxySpec]) -> tuple[Proxy, ...]:
        body = [{"name": s.name, "upstream": s.upstream, "listen": s.listen,
                 "enabled": s.enabled} for s in specs]
        raw = self._json(self._call("POST", "/populate", "apply", body, expect=(201,)), "apply")
        proxies = raw.get("proxies") if isinstance(raw, dict) else None
        return tuple(_proxy(p) for p in proxies or [])

    def update_proxy(self, name: str, *, enabled: bool | None = None,
                     listen: str | None = None, upstream: str | None = None,
                     phase: Phase = "apply") -> Proxy:
        body = {k: v for k, v in (("enabled", enabled), ("listen", listen),
                                  ("upstream", upstream)) if v is not None}
        response = self._call("PATCH", f"/proxies/{name}", phase, body)
        return self._parse_proxy(response)

    def delete_proxy(self, name: str, *, missing_ok: bool = False) -> None:
        expect = (204, 404) if missing_ok else (204,)
        self._call("DELETE", f"/proxies/{name}", "revert", expect=expect)

    # -- toxics ------------------------------------------------------------------
    def toxics(self, proxy: str) -> tuple[Toxic, ...]:
        raw = self._json(self._call("GET", f"/proxies/{proxy}/toxics", "apply"), "apply")
        if not isinstance(raw, list):
            raise FaultApplyError(f"toxiproxy answered a malformed toxic list: {raw!r}")
        return tuple(_toxic(t) for t in raw)

    def toxic(self, proxy: str, name: str) -> Toxic | None:
        """The named toxic, or None if the proxy has no such toxic."""
        response = self._call("GET", f"/proxies/{proxy}/toxics/{name}", "apply",
                              expect=(200, 404))
        if response.status_code == 404 and "toxic" in _server_message(response):
            return None
        if response.status_code == 404:
            raise FaultApplyError(f"toxiproxy: {_server_message(response)}: {proxy}")
        return self._parse_toxic(response)

    def add_toxic(self, proxy: str, spec: ToxicSpec) -> Toxic:
        response = self._call("POST", f"/proxies/{proxy}/toxics", "apply", spec.to_json(),
                              expect=(200, 201))
        return self._parse_toxic(response)

    def update_toxic(self, proxy: str, name: str, *,
                     attributes: Mapping[str, AttributeValue] | None = None,
                     toxicity: float | None = None) -> Toxic:
        body: dict[str, object] = {}
        if attributes is not None:
            body["attributes"] = dict(attributes)
        if toxicity is not None:
            body["toxicity"] = toxicity
        response = self._call("PATCH", f"/proxies/{proxy}/toxics/{name}", "apply", body)
        return self._parse_toxic(response)

    def remove_toxic(self, proxy: str, name: str, *, missing_ok: bool = False) -> None:
        expect = (204, 404) if missing_ok else (204,)
        response = self._call("DELETE", f"/proxies/{proxy}/toxics/{name}", "revert",
                              expect=expect)
        if response.status_code == 404 and "proxy" in _server_message(response):
            raise FaultRevertError(f"toxiproxy: proxy {proxy!r} not found")


__all__ = [
    "AttributeValue",
    "Proxy",
    "ProxySpec",
    "Stream",
    "Toxic",
    "ToxicSpec",
    "ToxiproxyClient",
]
