"""Network faults: one frozen dataclass per Toxiproxy toxic, plus ProxyDisabled.

Every toxic fault applies by adding its toxic and verifying that the proxy
lists it with the asked type and attributes, and reverts by removing it
(a toxic already gone counts as reverted) and verifying it is gone::

    with Latency(client, "node-1", latency_ms=500, jitter_ms=50):
        ...  # every response from node-1 is 450-550 ms late

Times are milliseconds unless the field name says otherwise. ``SseCut``,
``SseStall``, ``HttpError`` and ``HoldUpstreamOnClientClose`` need the embedded
proxy's LLM extensions; the real Toxiproxy answers 400 (ConfigError) for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from typing import ClassVar

from harness.clients.toxiproxy import AttributeValue, Stream, ToxicSpec, ToxiproxyClient
from harness.errors import ConfigError
from harness.faults.base import FaultBase


def _non_negative(owner: object, **values: int) -> None:
    for name, value in values.items():
        if value < 0:
            raise ConfigError(f"must be >= 0, got {value}", field=f"{type(owner).__name__}.{name}")


@dataclass(frozen=True)
class ToxicFault(FaultBase):
    """Base of the toxic faults: ``client``, ``proxy``, then the toxic's settings."""

    client: ToxiproxyClient
    proxy: str
    _: KW_ONLY
    stream: Stream = "downstream"
    toxicity: float = 1.0
    name: str = ""

    toxic_type: ClassVar[str] = ""
    # Toxiproxy attribute name -> field of the fault holding its value.
    attribute_fields: ClassVar[Mapping[str, str]] = {}

    def __post_init__(self) -> None:
        if not 0.0 <= self.toxicity <= 1.0:
            raise ConfigError(f"must be within [0, 1], got {self.toxicity}",
                              field=f"{type(self).__name__}.toxicity")
        _non_negative(self, **{f: v for f in self.attribute_fields.values()
                               if isinstance(v := getattr(self, f), int)})

    def attributes(self) -> Mapping[str, AttributeValue]:
        return {attr: getattr(self, f) for attr, f in self.attribute_fields.items()}

    @property
    def toxic_name(self) -> str:
        return self.name or f"{self.toxic_type}_{self.stream}"

    def spec(self) -> ToxicSpec:
        return ToxicSpec(self.toxic_type, self.attributes(), self.stream, self.toxicity,
                         self.toxic_name)

    def describe(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in self.attributes().items())
        return (f"{self.toxic_type}({settings}) on {self.proxy} {self.stream}"
                f" toxicity={self.toxicity:g}")

    def _apply(self) -> None:
        self.client.add_toxic(self.proxy, self.spec())

    def _verify_applied(self) -> bool:
        toxic = self.client.toxic(self.proxy, self.toxic_name)
        if toxic is None or toxic.type != self.toxic_type or toxic.stream != self.stream:
            return False
        return all(toxic.attributes.get(k) == v for k, v in self.attributes().items())

    def _revert(self) -> None:
        self.client.remove_toxic(self.proxy, self.toxic_name, missing_ok=True)

    def _verify_reverted(self) -> bool:
        return self.client.toxic(self.proxy, self.toxic_name) is None


@dataclass(frozen=True)
class Latency(ToxicFault):
    """Delay data by ``latency_ms`` ± ``jitter_ms``."""

    latency_ms: int
    jitter_ms: int = 0
    toxic_type: ClassVar[str] = "latency"
    attribute_fields: ClassVar[Mapping[str, str]] = {"latency": "latency_ms",
                                                     "jitter": "jitter_ms"}


@dataclass(frozen=True)
class Bandwidth(ToxicFault):
    """Limit throughput to ``rate_kbps`` KB/s (KB = 1000 bytes)."""

    rate_kbps: int
    toxic_type: ClassVar[str] = "bandwidth"
    attribute_fields: ClassVar[Mapping[str, str]] = {"rate": "rate_kbps"}


@dataclass(frozen=True)
class SlowClose(ToxicFault):
    """Delay the close of the connection by ``delay_ms``."""

    delay_ms: int
    toxic_type: ClassVar[str] = "slow_close"
    attribute_fields: ClassVar[Mapping[str, str]] = {"delay": "delay_ms"}


@dataclass(frozen=True)
class Timeout(ToxicFault):
    """Drop all data; close after ``timeout_ms`` idle (0 = hold forever).

    Reverting it closes the connections it held (Toxiproxy's behaviour).
    """

    timeout_ms: int
    toxic_type: ClassVar[str] = "timeout"
    attribute_fields: ClassVar[Mapping[str, str]] = {"timeout": "timeout_ms"}


@dataclass(frozen=True)
class ResetPeer(ToxicFault):
    """On the first data, wait ``timeout_ms`` then reset the connection (TCP RST)."""

    timeout_ms: int = 0
    toxic_type: ClassVar[str] = "reset_peer"
    attribute_fields: ClassVar[Mapping[str, str]] = {"timeout": "timeout_ms"}


@dataclass(frozen=True)
class Slicer(ToxicFault):
    """Split data into ~``average_size`` byte pieces, ``delay_us`` µs apart."""

    average_size: int
    size_variation: int = 0
    delay_us: int = 0
    toxic_type: ClassVar[str] = "slicer"

    attribute_fields: ClassVar[Mapping[str, str]] = {
        "average_size": "average_size", "size_variation": "size_variation",
        "delay": "delay_us"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size_variation >= max(self.average_size, 1):
            raise ConfigError("must be smaller than average_size", field="Slicer.size_variation")


@dataclass(frozen=True)
class LimitData(ToxicFault):
    """Close each connection after ``bytes_`` bytes in this stream."""

    bytes_: int
    toxic_type: ClassVar[str] = "limit_data"
    attribute_fields: ClassVar[Mapping[str, str]] = {"bytes": "bytes_"}


@dataclass(frozen=True)
class SseCut(ToxicFault):
    """Extension: cut an SSE response after ``events`` data events (per request)."""

    events: int = 1
    toxic_type: ClassVar[str] = "sse_cut"
    attribute_fields: ClassVar[Mapping[str, str]] = {"events": "events"}


@dataclass(frozen=True)
class SseStall(ToxicFault):
    """Extension: after ``after_events`` events, stall ``duration_ms`` (0 = until revert)."""

    after_events: int = 1
    duration_ms: int = 0
    toxic_type: ClassVar[str] = "sse_stall"
    attribute_fields: ClassVar[Mapping[str, str]] = {"after_events": "after_events",
                                                     "duration": "duration_ms"}


@dataclass(frozen=True)
class HttpError(ToxicFault):
    """Extension: answer a share (``toxicity``) of requests with ``status``.

    ``retry_after_s`` > 0 adds a Retry-After header; ``path_prefix`` limits
    the fault to matching request paths (e.g. ``/v1/`` spares ``/health``).
    """

    status: int = 503
    retry_after_s: int = 0
    message: str = ""
    path_prefix: str = ""
    _: KW_ONLY
    stream: Stream = "upstream"
    toxic_type: ClassVar[str] = "http_error"

    attribute_fields: ClassVar[Mapping[str, str]] = {
        "status": "status", "retry_after": "retry_after_s", "message": "message",
        "path_prefix": "path_prefix"}

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 599:
            raise ConfigError(f"not an HTTP status: {self.status}", field="HttpError.status")
        super().__post_init__()


@dataclass(frozen=True)
class HoldUpstreamOnClientClose(ToxicFault):
    """Extension: a proxy that does not propagate client disconnects.

    When a client closes, its upstream connection stays open (what the
    upstream sends is read and dropped) until the upstream closes it,
    ``max_hold_ms`` pass (0 = no limit) or the fault is reverted: reverting
    closes every upstream still held. Toxicity is drawn per connection.
    """

    max_hold_ms: int = 60_000
    toxic_type: ClassVar[str] = "hold_upstream"
    attribute_fields: ClassVar[Mapping[str, str]] = {"max_hold": "max_hold_ms"}


@dataclass(frozen=True)
class ProxyDisabled(FaultBase):
    """Disable a proxy: its listener and every live connection close."""

    client: ToxiproxyClient
    proxy: str

    def describe(self) -> str:
        return f"proxy {self.proxy} disabled"

    def _apply(self) -> None:
        self.client.update_proxy(self.proxy, enabled=False)

    def _verify_applied(self) -> bool:
        return not self.client.proxy(self.proxy).enabled

    def _revert(self) -> None:
        self.client.update_proxy(self.proxy, enabled=True, phase="revert")

    def _verify_reverted(self) -> bool:
        return self.client.proxy(self.proxy).enabled


NETWORK_FAULTS: tuple[type[ToxicFault], ...] = (
    Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer, LimitData,
    SseCut, SseStall, HttpError, HoldUpstreamOnClientClose,
)
