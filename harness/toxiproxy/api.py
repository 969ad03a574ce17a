"""The Toxiproxy HTTP API: routes, JSON decoding, status codes.

Routes, status codes and error messages follow Toxiproxy's ``api.go``:
201 on proxy create and populate, 200 on toxic create (Toxiproxy does not
send 201 there), 204 on deletes and reset, POST and PATCH both update.
Errors are ``{"error": message, "status": code}``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Awaitable, Callable
from importlib import metadata

from harness.toxiproxy.apierror import (
    BAD_REQUEST_BODY,
    INVALID_TOXIC_TYPE,
    MISSING_FIELD,
    PROXY_ALREADY_EXISTS,
    PROXY_NOT_FOUND,
    TOXIC_ALREADY_EXISTS,
    TOXIC_NOT_FOUND,
    ApiError,
)
from harness.toxiproxy.connection import DEAD_PEER_S
from harness.toxiproxy.httpd import Request, Response
from harness.toxiproxy.llm import LLM_KINDS
from harness.toxiproxy.metrics import render_metrics
from harness.toxiproxy.proxy import Proxy, normalize_listen
from harness.toxiproxy.state import Direction, JsonObject, JsonValue, ToxicKind, ToxicState
from harness.toxiproxy.toxics import STANDARD_KINDS

KINDS: dict[str, ToxicKind] = {k.name: k for k in (*STANDARD_KINDS, *LLM_KINDS)}
Route = Callable[["Api", Request, list[str]], Awaitable[Response]]


def _version() -> str:
    try:
        return f"llm-drill-{metadata.version('llm-drill')}"
    except metadata.PackageNotFoundError:
        return "llm-drill"


def json_response(value: JsonValue, status: int = 200) -> Response:
    return Response(status, json.dumps(value).encode())


def error_response(error: ApiError) -> Response:
    return json_response({"error": error.message, "status": error.status}, error.status)


def decode_object(body: bytes) -> JsonObject:
    try:
        value = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." nested too deep
        raise BAD_REQUEST_BODY.joined(str(exc)) from None
    if value is None:
        raise BAD_REQUEST_BODY.joined("EOF")
    if not isinstance(value, dict):
        raise BAD_REQUEST_BODY.joined(f"expected a JSON object, got {type(value).__name__}")
    return value


def field_of(obj: JsonObject, key: str, kind: type[str] | type[bool] | type[float],
             default: str | bool | float) -> str | bool | float:
    value = obj.get(key)
    if value is None:
        return default
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind):
        return value
    raise BAD_REQUEST_BODY.joined(f"field {key} must be a {kind.__name__}")


def text(obj: JsonObject, key: str, default: str = "") -> str:
    return str(field_of(obj, key, str, default))


def flag(obj: JsonObject, key: str, default: bool) -> bool:
    return bool(field_of(obj, key, bool, default))


class Api:
    """Proxy collection plus the HTTP handlers (everything on one event loop)."""

    def __init__(self, rng: random.Random, buffer: memoryview,
                 dead_peer_s: float = DEAD_PEER_S) -> None:
        self.rng = rng
        self.buffer = buffer
        self.dead_peer_s = dead_peer_s
        self.proxies: dict[str, Proxy] = {}

    async def handle(self, request: Request) -> Response:
        if request.header("user-agent").startswith("Mozilla/"):
            return Response(403, b"User agent not allowed\n", "text/plain")
        path = request.path.split("?", 1)[0]
        for pattern, methods in ROUTES:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            route = methods.get(request.method)
            if route is None:
                return error_response(ApiError("method not allowed", 405))
            try:
                return await route(self, request, list(match.groups()))
            except ApiError as exc:
                return error_response(exc)
        return error_response(ApiError("404 page not found", 404))

    # -- helpers -----------------------------------------------------------
    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise PROXY_NOT_FOUND
        return proxy

    def new_proxy(self, name: str, listen: str, upstream: str) -> Proxy:
        return Proxy(name, listen, upstream, buffer=self.buffer, rng=self.rng,
                     dead_peer_s=self.dead_peer_s)

    async def close(self) -> None:
        for proxy in list(self.proxies.values()):
            await proxy.stop()
        self.proxies.clear()

    # -- proxies -----------------------------------------------------------
    async def proxy_index(self, request: Request, args: list[str]) -> Response:
        return json_response({name: p.to_json() for name, p in self.proxies.items()})

    async def proxy_create(self, request: Request, args: list[str]) -> Response:
        body = decode_object(request.body)
        name, upstream = text(body, "name"), text(body, "upstream")
        if not name:
            raise MISSING_FIELD.joined("name")
        if not upstream:
            raise MISSING_FIELD.joined("upstream")
        if name in self.proxies:
            raise PROXY_ALREADY_EXISTS
        proxy = self.new_proxy(name, text(body, "listen"), upstream)
        if flag(body, "enabled", True):
            await proxy.start()
        self.proxies[name] = proxy
        return json_response(proxy.to_json(), 201)

    async def proxy_show(self, request: Request, args: list[str]) -> Response:
        return json_response(self.get(args[0]).to_json())

    async def proxy_update(self, request: Request, args: list[str]) -> Response:
        proxy = self.get(args[0])
        body = decode_object(request.body)
        listen = text(body, "listen", proxy.listen)
        upstream = text(body, "upstream", proxy.upstream)
        enabled = flag(body, "enabled", proxy.enabled)
        async with proxy.lock:
            if normalize_listen(listen) != normalize_listen(proxy.listen) or (
                    upstream != proxy.upstream):
                await proxy.stop()
                proxy.listen, proxy.upstream = listen, upstream
            if enabled:
                await proxy.start()
            else:
                await proxy.stop()
        return json_response(proxy.to_json())

    async def proxy_delete(self, request: Request, args: list[str]) -> Response:
        proxy = self.get(args[0])
        await proxy.stop()
        self.proxies.pop(proxy.name, None)
        return Response(204)

    async def populate(self, request: Request, args: list[str]) -> Response:
        try:
            created = await self._populate(request.body)
        except ApiError as exc:
            body: JsonObject = {"error": exc.message, "status": exc.status, "proxies": None}
            return json_response(body, exc.status)
        return json_response({"proxies": [p.to_json() for p in created]}, 201)

    async def _populate(self, raw: bytes) -> list[Proxy]:
        try:
            items = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise BAD_REQUEST_BODY.joined(str(exc)) from None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise BAD_REQUEST_BODY.joined("expected a JSON array of proxies")
        for index, item in enumerate(items, 1):
            for key in ("name", "upstream"):
                if not text(item, key):
                    raise MISSING_FIELD.joined(f"{key} at proxy {index}")
        return [await self._add_or_replace(item) for item in items]

    async def _add_or_replace(self, item: JsonObject) -> Proxy:
        name, listen, upstream = text(item, "name"), text(item, "listen"), text(item, "upstream")
        existing = self.proxies.get(name)
        if existing is not None:
            if normalize_listen(listen) == existing.listen and upstream == existing.upstream:
                return existing
            await existing.stop()
        proxy = self.new_proxy(name, listen, upstream)
        if flag(item, "enabled", True):
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def reset(self, request: Request, args: list[str]) -> Response:
        for proxy in list(self.proxies.values()):
            async with proxy.lock:
                await proxy.start()
                for toxic in proxy.toxics():
                    await proxy.remove_toxic(toxic)
        return Response(204)

    # -- toxics ------------------------------------------------------------
    async def toxic_index(self, request: Request, args: list[str]) -> Response:
        return json_response([t.to_json() for t in self.get(args[0]).toxics()])

    async def toxic_create(self, request: Request, args: list[str]) -> Response:
        proxy = self.get(args[0])
        toxic = parse_new_toxic(decode_object(request.body))
        async with proxy.lock:
            if proxy.find_toxic(toxic.name) is not None:
                raise TOXIC_ALREADY_EXISTS
            proxy.add_toxic(toxic)
        return json_response(toxic.to_json())

    def _toxic(self, args: list[str]) -> tuple[Proxy, ToxicState]:
        proxy = self.get(args[0])
        toxic = proxy.find_toxic(args[1])
        if toxic is None:
            raise TOXIC_NOT_FOUND
        return proxy, toxic

    async def toxic_show(self, request: Request, args: list[str]) -> Response:
        return json_response(self._toxic(args)[1].to_json())

    async def toxic_update(self, request: Request, args: list[str]) -> Response:
        proxy, toxic = self._toxic(args)
        body = decode_object(request.body)
        attributes = toxic.attributes.merged(_attributes(body))
        toxicity = float(field_of(body, "toxicity", float, toxic.toxicity))
        async with proxy.lock:
            toxic.attributes, toxic.toxicity = attributes, toxicity
            await proxy.update_toxic(toxic)
        return json_response(toxic.to_json())

    async def toxic_delete(self, request: Request, args: list[str]) -> Response:
        proxy, toxic = self._toxic(args)
        async with proxy.lock:
            await proxy.remove_toxic(toxic)
        return Response(204)

    async def version(self, request: Request, args: list[str]) -> Response:
        body = json.dumps({"version": _version()}) + "\n"
        return Response(200, body.encode(), "application/json;charset=utf-8")

    async def metrics(self, request: Request, args: list[str]) -> Response:
        body, content_type = render_metrics(list(self.proxies.values()))
        return Response(200, body, content_type)


def _attributes(body: JsonObject) -> JsonObject:
    attributes = body.get("attributes")
    if attributes is None:
        return {}
    if not isinstance(attributes, dict):
        raise BAD_REQUEST_BODY.joined("attributes must be an object")
    return attributes


def parse_new_toxic(body: JsonObject) -> ToxicState:
    """Decode a toxic like AddToxicJson: stream, then name, type, attributes."""
    kind_name = text(body, "type")
    kind = KINDS.get(kind_name)
    default = Direction.DOWNSTREAM
    if kind is not None and kind.stream is not None:
        default = kind.stream
    stream_text = text(body, "stream", default.label)
    stream = Direction.parse(stream_text)
    name = text(body, "name") or f"{kind_name}_{stream.label}"
    if kind is None:
        raise INVALID_TOXIC_TYPE
    if kind.stream is not None and stream is not kind.stream:
        raise ApiError(f"toxic type {kind.name} only acts on the {kind.stream.label} stream", 400)
    toxicity = float(field_of(body, "toxicity", float, 1.0))
    return ToxicState(name, kind, stream, toxicity, kind.attributes.merged(_attributes(body)))


ROUTES: list[tuple[re.Pattern[str], dict[str, Route]]] = [
    (re.compile(r"/reset"), {"POST": Api.reset}),
    (re.compile(r"/proxies"), {"GET": Api.proxy_index, "POST": Api.proxy_create}),
    (re.compile(r"/populate"), {"POST": Api.populate}),
    (re.compile(r"/proxies/([^/]+)"), {
        "GET": Api.proxy_show, "POST": Api.proxy_update,
        "PATCH": Api.proxy_update, "DELETE": Api.proxy_delete}),
    (re.compile(r"/proxies/([^/]+)/toxics"), {"GET": Api.toxic_index, "POST": Api.toxic_create}),
    (re.compile(r"/proxies/([^/]+)/toxics/([^/]+)"), {
        "GET": Api.toxic_show, "POST": Api.toxic_update,
        "PATCH": Api.toxic_update, "DELETE": Api.toxic_delete}),
    (re.compile(r"/version"), {"GET": Api.version}),
    (re.compile(r"/metrics"), {"GET": Api.metrics}),
]
