"""A drill catalogue's config: the generic mechanism, and the two sections the library reads.

A catalogue (the shipped one is ``drills/catalogue.py`` with ``drills/drills.yaml``)
describes its thresholds as frozen dataclasses and loads its YAML file with
:func:`load_drill_config`: the same decoder as the stack file, so a malformed value
names the file, line and field, and ``--drill-set section.field=value`` overrides
one value per run. Adding a drill is a section in the catalogue's schema and YAML;
nothing here changes.

The library itself reads only the sections every catalogue must have (see
:class:`DrillSettings`): ``steady`` (the steady-state gate) and ``slo`` (load summaries).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

from harness.config import load_yaml
from harness.errors import ConfigError

SchemaT = TypeVar("SchemaT")


@dataclass(frozen=True)
class SteadyConfig:
    """The steady-state gate every drill passes before its fault."""

    ttft_p95_s: float
    probe_requests: int
    max_error_ratio: float
    settle_within_s: float


@dataclass(frozen=True)
class SLOConfig:
    """The service-level objectives load summaries count goodput against."""

    ttft_s: float
    e2e_s: float


class DrillSettings(Protocol):
    """What the library needs from a catalogue's config: any frozen dataclass with
    ``steady`` and ``slo`` sections (its drills' own sections are the catalogue's)."""

    @property
    def steady(self) -> SteadyConfig: ...

    @property
    def slo(self) -> SLOConfig: ...


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    """``["cancel_storm.settle_s=5"]`` -> ``{"cancel_storm.settle_s": 5}`` (YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected section.field=value, got {item!r}", field="--drill-set")
        out[key.strip()] = yaml.safe_load(value)
    return out


def load_drill_config(path: Path, schema: type[SchemaT], sets: Iterable[str] = ()) -> SchemaT:
    """Decode ``path`` as ``schema`` (a frozen dataclass), then apply ``--drill-set`` values.

    Errors name the file, line and field (``ConfigError``); an override naming no field
    of the schema is refused, listing the fields there are.
    """
    return load_yaml(path, schema, overrides=parse_assignments(sets))
