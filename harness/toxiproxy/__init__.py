"""An asyncio fault proxy that speaks the Toxiproxy HTTP API.

Standard toxics (latency, bandwidth, slow_close, timeout, reset_peer, slicer,
limit_data) follow Toxiproxy's Go source; ``sse_cut``, ``sse_stall`` and
``http_error`` are HTTP-aware extensions for LLM streaming (see
``docs/fault-proxy.md``).
"""

from harness.toxiproxy.server import ServerThread, ToxiproxyServer, serve

__all__ = ["ServerThread", "ToxiproxyServer", "serve"]
