"""The server's state: directions, toxic kinds, configured toxics.

Toxic attributes are typed frozen dataclasses, one per toxic type; JSON is
decoded into them field by field (unknown fields are ignored and a value of
the wrong type is a 400, as Go's ``encoding/json`` does in Toxiproxy).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.toxiproxy.apierror import BAD_REQUEST_BODY, INVALID_STREAM

if TYPE_CHECKING:
    from harness.toxiproxy.link import Stage

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject = dict[str, JsonValue]


class Direction(enum.IntEnum):
    """Toxiproxy's stream: upstream = client to server, downstream = back."""

    UPSTREAM = 0
    DOWNSTREAM = 1

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Direction:
        try:
            return cls[value.upper()]
        except KeyError:
            raise INVALID_STREAM from None


@dataclass(frozen=True)
class Attributes:
    """Base of every toxic's attributes (fields: int or str with defaults)."""

    def to_json(self) -> JsonObject:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def merged(self, raw: Mapping[str, JsonValue]) -> Attributes:
        """A copy with the fields present in ``raw`` replaced (400 on a bad type)."""
        changes: dict[str, int | str] = {}
        for f in dataclasses.fields(self):
            if f.name in raw:
                changes[f.name] = _coerce(f.name, raw[f.name], getattr(self, f.name))
        return dataclasses.replace(self, **changes)


def _coerce(name: str, value: JsonValue, current: int | str) -> int | str:
    if isinstance(current, str):
        if isinstance(value, str):
            return value
        raise BAD_REQUEST_BODY.joined(f"attribute {name} must be a string")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise BAD_REQUEST_BODY.joined(f"attribute {name} must be an integer, got {value!r}")


Pipe = Callable[["Stage"], Awaitable[None]]


@dataclass(frozen=True)
class ToxicKind:
    """A toxic type: its attributes, its pipe and how it behaves on removal."""

    name: str
    attributes: Attributes
    pipe: Pipe
    cleanup_closes: bool = False  # removing it closes the held connections (timeout)
    resets: bool = False  # close with RST: set SO_LINGER 0 on the link's sockets
    per_request: bool = False  # toxicity drawn per HTTP request, not per connection
    stream: Direction | None = None  # extensions act on one stream only
    holds_upstream: bool = False  # a client's close does not reach the upstream (hold_upstream)
    extension: bool = False


@dataclass(eq=False)
class ToxicState:
    """One toxic configured on a proxy (mutable: attributes can be updated)."""

    name: str
    kind: ToxicKind
    stream: Direction
    toxicity: float
    attributes: Attributes

    def to_json(self) -> JsonObject:
        return {
            "attributes": self.attributes.to_json(),
            "name": self.name,
            "type": self.kind.name,
            "stream": self.stream.label,
            "toxicity": self.toxicity,
        }
