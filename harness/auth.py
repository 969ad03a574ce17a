"""Bearer tokens for the harness's own HTTP servers (fault proxy API, webhook receiver,
rollout controller).

The fault proxy's API can cut any connection it fronts, and the webhook
receiver's journal decides whether a drill saw its alert, so neither may be
open to the network by accident:

* both bind loopback by default;
* bound to any other address, they refuse to start without a token
  (:func:`bind_refusal` says why; the servers raise it as a ``ConfigError``);
* with a token, every guarded request must carry ``Authorization: Bearer
  <token>``: none (or another scheme) is a 401, a wrong token a 403; the
  comparison is constant-time.

Tokens come from the environment, never the command line (``ps`` shows it):
``TOXIPROXY_AUTH_TOKEN`` for the fault proxy (Toxiproxy's own variable) and
``LLM_DRILL_WEBHOOK_TOKEN`` for the receiver, ``LLM_DRILL_ROLLOUT_TOKEN`` for the
rollout controller (which can take any worker out of the gateways). The harness's clients send the
token when the variable is set.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping

TOXIPROXY_TOKEN_ENV = "TOXIPROXY_AUTH_TOKEN"
WEBHOOK_TOKEN_ENV = "LLM_DRILL_WEBHOOK_TOKEN"
ROLLOUT_TOKEN_ENV = "LLM_DRILL_ROLLOUT_TOKEN"
UNAUTHORIZED = 401
FORBIDDEN = 403


def token_from_env(variable: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The token in ``variable``; None when unset or empty."""
    value = (os.environ if environ is None else environ).get(variable, "")
    return value or None


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses; False for any other name or address."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_refusal(what: str, host: str, token: str | None, variable: str) -> str | None:
    """Why ``what`` must not serve on ``host`` (non-loopback, no token); None if it may.

    A pure function (this module sits beside the error tree, not above it): the
    servers raise the reason as a :class:`~harness.errors.ConfigError`.
    """
    if token is not None or is_loopback(host):
        return None
    return (f"{what} refuses to bind {host!r} without a token: it would let anyone on the "
            f"network drive it. Bind 127.0.0.1, or set {variable}")


def authorization_failure(header: str, token: str | None) -> int | None:
    """None if ``header`` (an Authorization value) carries ``token``; else 401 or 403.

    With no token configured every request passes.
    """
    if token is None:
        return None
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return UNAUTHORIZED
    if hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    return FORBIDDEN


def bearer_headers(token: str | None) -> dict[str, str]:
    """The header a client sends: ``{"Authorization": "Bearer <token>"}``, or none."""
    return {"Authorization": f"Bearer {token}"} if token else {}
