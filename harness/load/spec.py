"""What a load run is: value objects describing the traffic and the client's hygiene.

Everything here is a frozen dataclass checked in ``__post_init__``: a bad value
raises :class:`~harness.errors.ConfigError` naming the field, before any load
starts. Distribution specs are strings so the CLI, YAML and Python share them:

    ``128`` or ``fixed:128``      every request uses 128
    ``uniform:64-256``            uniform integers in [64, 256]
    ``file:lengths.txt``          sampled from a file with one integer per line
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from harness.errors import ConfigError

MAX_REQUESTS = 100_000
MAX_DURATION_S = 3_600.0
MAX_CONCURRENCY = 4_096
MAX_RATE = 10_000.0
MAX_LENGTH = 1_000_000


class Api(StrEnum):
    COMPLETIONS = "completions"
    CHAT = "chat"

    @property
    def path(self) -> str:
        return "/v1/completions" if self is Api.COMPLETIONS else "/v1/chat/completions"


class Arrival(StrEnum):
    """How an open-loop run spaces its sends."""

    POISSON = "poisson"
    CONSTANT = "constant"


@dataclass(frozen=True)
class Lengths:
    """A distribution of positive integers (prompt words, output tokens)."""

    values: tuple[int, ...] = ()
    low: int = 0
    high: int = 0
    spec: str = ""

    def sample(self, rng: random.Random) -> int:
        if self.values:
            return rng.choice(self.values)
        return rng.randint(self.low, self.high)

    @property
    def maximum(self) -> int:
        return max(self.values) if self.values else self.high


def parse_lengths(spec: str, *, field_name: str) -> Lengths:
    """Parse ``fixed:N`` / ``N`` / ``uniform:A-B`` / ``file:PATH``; ConfigError names the field."""
    kind, _, arg = spec.strip().partition(":")
    if not arg:
        kind, arg = "fixed", kind
    parsers = {"fixed": _parse_fixed, "uniform": _parse_uniform, "file": _parse_file}
    parser = parsers.get(kind)
    if parser is None:
        raise ConfigError(f"unknown distribution {kind!r} in {spec!r}; "
                          "use N, fixed:N, uniform:A-B or file:PATH", field=field_name)
    return parser(arg.strip(), spec, field_name)


def _positive_int(text: str, spec: str, field_name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{text!r} is not an integer in {spec!r}", field=field_name) from None
    if not 1 <= value <= MAX_LENGTH:
        raise ConfigError(f"{value} is outside 1..{MAX_LENGTH} in {spec!r}", field=field_name)
    return value


def _parse_fixed(arg: str, spec: str, field_name: str) -> Lengths:
    return Lengths(values=(_positive_int(arg, spec, field_name),), spec=spec)


def _parse_uniform(arg: str, spec: str, field_name: str) -> Lengths:
    low_text, sep, high_text = arg.replace(",", "-").partition("-")
    if not sep:
        raise ConfigError(f"uniform needs A-B, got {spec!r}", field=field_name)
    low = _positive_int(low_text, spec, field_name)
    high = _positive_int(high_text, spec, field_name)
    if low > high:
        raise ConfigError(f"uniform low {low} > high {high} in {spec!r}", field=field_name)
    return Lengths(low=low, high=high, spec=spec)


def _parse_file(arg: str, spec: str, field_name: str) -> Lengths:
    try:
        lines = Path(arg).read_text(encoding="utf-8").split()
    except OSError as exc:
        raise ConfigError(f"cannot read lengths file: {exc.strerror}", path=arg,
                          field=field_name) from exc
    if not lines:
        raise ConfigError("lengths file is empty", path=arg, field=field_name)
    return Lengths(values=tuple(_positive_int(v, spec, field_name) for v in lines), spec=spec)


@dataclass(frozen=True)
class Timeouts:
    """Client timeouts in seconds; ``None`` means no timeout (the default).

    ``read`` bounds the wait for response headers and the first chunk;
    ``stream_idle`` bounds every later gap between chunks.
    """

    connect: float | None = None
    read: float | None = None
    stream_idle: float | None = None

    def __post_init__(self) -> None:
        for name in ("connect", "read", "stream_idle"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= MAX_DURATION_S:
                raise ConfigError(f"must be in (0, {MAX_DURATION_S}]", field=f"timeouts.{name}")


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with full-jitter exponential backoff; off by default (one attempt).

    Retried: HTTP 429 and 5xx, timeouts and connect errors, and only while no
    content chunk has arrived (a half-streamed answer is never replayed).
    A ``Retry-After`` header sets a floor on the wait: ``told`` = the header capped
    at ``retry_after_cap_s``, stretched by ``1 + U(0, retry_after_jitter)`` so clients
    told the same value do not come back as one synchronized herd (never sooner than
    told, at most ``(1 + retry_after_jitter)`` x told; 0 waits exactly ``told``).
    Retried requests carry one ``Idempotency-Key`` across all their attempts.
    """

    max_attempts: int = 1
    base_backoff_s: float = 0.1
    max_backoff_s: float = 5.0
    retry_after_cap_s: float = 30.0
    retry_after_jitter: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= 20:
            raise ConfigError("must be in 1..20", field="retries.max_attempts")
        if not 0 <= self.base_backoff_s <= self.max_backoff_s <= 300:
            raise ConfigError("need 0 <= base_backoff_s <= max_backoff_s <= 300",
                              field="retries.backoff")
        if not 0 <= self.retry_after_jitter <= 10:
            raise ConfigError("must be in [0, 10]", field="retries.retry_after_jitter")

    @property
    def enabled(self) -> bool:
        return self.max_attempts > 1

    def backoff(self, retry: int, rng: random.Random, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        cap = min(self.max_backoff_s, self.base_backoff_s * 2 ** (retry - 1))
        wait = rng.uniform(0.0, cap)
        if retry_after is not None:
            told = min(retry_after, self.retry_after_cap_s)
            if self.retry_after_jitter > 0:  # 0: exactly told, and no extra draw from rng
                told *= 1.0 + rng.uniform(0.0, self.retry_after_jitter)
            wait = max(wait, told)
        return wait


@dataclass(frozen=True)
class CancelPolicy:
    """Abandon streams on purpose (cancel storms): after N content chunks or T seconds."""

    after_chunks: int | None = None
    after_s: float | None = None

    def __post_init__(self) -> None:
        if self.after_chunks is not None and self.after_chunks < 0:
            raise ConfigError("must be >= 0", field="cancel.after_chunks")
        if self.after_s is not None and not 0 < self.after_s <= MAX_DURATION_S:
            raise ConfigError(f"must be in (0, {MAX_DURATION_S}]", field="cancel.after_s")

    @property
    def enabled(self) -> bool:
        return self.after_chunks is not None or self.after_s is not None


@dataclass(frozen=True)
class ClientPolicy:
    """Client hygiene: all off by default, drills turn pieces on."""

    timeouts: Timeouts = Timeouts()
    retries: RetryPolicy = RetryPolicy()
    cancel: CancelPolicy = CancelPolicy()


@dataclass(frozen=True)
class LoadSpec:
    """One bounded load run. ``max_requests`` and ``duration_s`` are both required.

    Exactly one of ``rate`` (open loop, requests/s) and ``concurrency`` (closed
    loop, users each sending their next request when the last one ends) is set.
    ``drain_s`` bounds how long requests still in flight at the end may finish
    before they are cancelled.
    """

    target: str
    model: str
    max_requests: int
    duration_s: float
    rate: float | None = None
    concurrency: int | None = None
    arrival: Arrival = Arrival.POISSON
    api: Api = Api.COMPLETIONS
    prompt_len: Lengths = field(default_factory=lambda: parse_lengths("32", field_name="x"))
    output_len: Lengths = field(default_factory=lambda: parse_lengths("64", field_name="x"))
    ignore_eos: bool = True
    stream: bool = True
    seed: int = 0
    policy: ClientPolicy = ClientPolicy()
    drain_s: float = 30.0
    max_in_flight: int = 1_024
    record_text: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.max_requests <= MAX_REQUESTS:
            raise ConfigError(f"must be in 1..{MAX_REQUESTS}", field="max_requests")
        if not 0 < self.duration_s <= MAX_DURATION_S:
            raise ConfigError(f"must be in (0, {MAX_DURATION_S}]", field="duration_s")
        if not 0 <= self.drain_s <= MAX_DURATION_S:
            raise ConfigError(f"must be in [0, {MAX_DURATION_S}]", field="drain_s")
        if not 1 <= self.max_in_flight <= MAX_CONCURRENCY:
            raise ConfigError(f"must be in 1..{MAX_CONCURRENCY}", field="max_in_flight")
        self._check_mode()

    def _check_mode(self) -> None:
        if (self.rate is None) == (self.concurrency is None):
            raise ConfigError("set exactly one of rate (open loop) and concurrency "
                              "(closed loop)", field="rate/concurrency")
        if self.rate is not None and not 0 < self.rate <= MAX_RATE:
            raise ConfigError(f"must be in (0, {MAX_RATE}]", field="rate")
        if self.concurrency is not None and not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ConfigError(f"must be in 1..{MAX_CONCURRENCY}", field="concurrency")

    @property
    def url(self) -> str:
        return self.target.rstrip("/") + self.api.path


def cancel_storm_spec(target: str, model: str, *, streams: int, after_chunks: int = 5,
                      output_tokens: int = 512, duration_s: float = 60.0,
                      prompt_words: int = 64) -> LoadSpec:
    """``streams`` concurrent streams, each abandoned after ``after_chunks`` content chunks.

    Closed loop with one request per stream (``max_requests == streams``); long
    outputs with ``ignore_eos`` keep each stream alive until the client drops it.
    """
    return LoadSpec(target=target, model=model, max_requests=streams, duration_s=duration_s,
                    concurrency=streams, ignore_eos=True, drain_s=min(30.0, duration_s),
                    max_in_flight=max(streams, 1),
                    prompt_len=parse_lengths(str(prompt_words), field_name="prompt_len"),
                    output_len=parse_lengths(str(output_tokens), field_name="output_len"),
                    policy=ClientPolicy(cancel=CancelPolicy(after_chunks=after_chunks)))
