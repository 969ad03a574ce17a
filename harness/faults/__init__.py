"""Fault objects: apply()/revert()/describe(), always reverted.

Network faults drive a Toxiproxy-API server (the embedded
:mod:`harness.toxiproxy` or a real Toxiproxy) through
:class:`~harness.clients.toxiproxy.ToxiproxyClient`.
"""

from harness.clients.toxiproxy import Proxy, ProxySpec, Toxic, ToxicSpec, ToxiproxyClient
from harness.faults.base import Fault, FaultBase
from harness.faults.network import (
    Bandwidth,
    HoldUpstreamOnClientClose,
    HttpError,
    Latency,
    LimitData,
    ProxyDisabled,
    ResetPeer,
    Slicer,
    SlowClose,
    SseCut,
    SseStall,
    Timeout,
    ToxicFault,
)

__all__ = [
    "Bandwidth",
    "Fault",
    "FaultBase",
    "HoldUpstreamOnClientClose",
    "HttpError",
    "Latency",
    "LimitData",
    "Proxy",
    "ProxyDisabled",
    "ProxySpec",
    "ResetPeer",
    "Slicer",
    "SlowClose",
    "SseCut",
    "SseStall",
    "Timeout",
    "Toxic",
    "ToxicFault",
    "ToxicSpec",
    "ToxiproxyClient",
]
