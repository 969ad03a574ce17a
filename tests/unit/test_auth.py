"""harness.auth: who may bind where, and which Authorization headers pass."""

from __future__ import annotations

import pytest

from harness.auth import (
    FORBIDDEN,
    UNAUTHORIZED,
    authorization_failure,
    bearer_headers,
    bind_refusal,
    is_loopback,
    token_from_env,
)

TOKEN = "s3cret-token"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost",
                                  "LOCALHOST", " 127.0.0.1 "])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "10.0.0.5", "192.168.1.2",
                                  "example.org", "localhost.evil.org", "127.0.0.1.nip.io"])
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_binding_beyond_loopback_needs_a_token() -> None:
    refusal = bind_refusal("the thing", "0.0.0.0", None, "SOME_TOKEN_ENV")
    assert refusal is not None
    assert "the thing refuses to bind '0.0.0.0'" in refusal and "SOME_TOKEN_ENV" in refusal
    assert bind_refusal("the thing", "0.0.0.0", TOKEN, "SOME_TOKEN_ENV") is None
    assert bind_refusal("the thing", "127.0.0.1", None, "SOME_TOKEN_ENV") is None


@pytest.mark.parametrize(("header", "expected"), [
    (f"Bearer {TOKEN}", None),
    (f"bearer {TOKEN}", None),
    (f"  Bearer   {TOKEN}  ", None),
    ("", UNAUTHORIZED),
    ("Bearer", UNAUTHORIZED),
    ("Bearer ", UNAUTHORIZED),
    (f"Basic {TOKEN}", UNAUTHORIZED),
    (TOKEN, UNAUTHORIZED),
    ("Bearer wrong", FORBIDDEN),
    (f"Bearer {TOKEN}x", FORBIDDEN),
    (f"Bearer {TOKEN[:-1]}", FORBIDDEN),
    ("Bearer s3cret-tokén", FORBIDDEN),
])
def test_authorization_header(header: str, expected: int | None) -> None:
    assert authorization_failure(header, TOKEN) == expected


def test_without_a_token_everything_passes() -> None:
    assert authorization_failure("", None) is None
    assert authorization_failure("Bearer anything", None) is None


def test_token_from_env_ignores_empty_values() -> None:
    assert token_from_env("T", {"T": TOKEN}) == TOKEN
    assert token_from_env("T", {"T": ""}) is None
    assert token_from_env("T", {}) is None


def test_bearer_headers() -> None:
    assert bearer_headers(TOKEN) == {"Authorization": f"Bearer {TOKEN}"}
    assert bearer_headers(None) == {}
