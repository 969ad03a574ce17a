"""Loading a catalogue's config: any frozen-dataclass schema, errors naming file, line
and field, and ``--drill-set`` overrides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from drills.catalogue import DRILLS_FILE, DrillsConfig, load_catalogue
from harness.drill import DrillSettings, SLOConfig, SteadyConfig, load_drill_config
from harness.errors import ConfigError

STEADY = """steady: {ttft_p95_s: 1.0, probe_requests: 6, max_error_ratio: 0.0,
                      settle_within_s: 60}
slo: {ttft_s: 2.0, e2e_s: 20.0}
"""


@dataclass(frozen=True)
class SurgeConfig:
    requests: int
    rate_per_s: float


@dataclass(frozen=True)
class MyCatalogue:
    """A catalogue of one drill, defined outside the library."""

    steady: SteadyConfig
    slo: SLOConfig
    surge: SurgeConfig


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_catalogue_outside_the_library_loads_into_its_own_schema(tmp_path: Path) -> None:
    path = write(tmp_path, STEADY + "surge: {requests: 40, rate_per_s: 2}\n")
    config: DrillSettings = load_drill_config(path, MyCatalogue)
    assert config == MyCatalogue(SteadyConfig(1.0, 6, 0.0, 60.0), SLOConfig(2.0, 20.0),
                                 SurgeConfig(requests=40, rate_per_s=2.0))


def test_overrides_replace_one_field_each(tmp_path: Path) -> None:
    path = write(tmp_path, STEADY + "surge: {requests: 40, rate_per_s: 2}\n")
    config = load_drill_config(path, MyCatalogue, ["surge.requests=5", "slo.ttft_s=0.5"])
    assert (config.surge.requests, config.slo.ttft_s, config.surge.rate_per_s) == (5, 0.5, 2.0)


def test_a_malformed_value_names_the_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, STEADY + "surge:\n  requests: many\n  rate_per_s: 2\n")
    with pytest.raises(ConfigError) as caught:
        load_drill_config(path, MyCatalogue)
    assert str(caught.value) == f"{path}:5 [surge.requests]: expected an integer, got 'many'"


def test_a_missing_section_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"surge.*required field is missing"):
        load_drill_config(write(tmp_path, STEADY), MyCatalogue)


@pytest.mark.parametrize(("assignment", "names"), [
    ("surge.bursts=3", r"surge\.bursts.*no such field \(known: requests, rate_per_s\)"),
    ("surge.requests=lots", r"surge\.requests.*expected an integer"),
    ("surge.requests", r"--drill-set.*expected section\.field=value"),
])
def test_a_bad_override_names_the_field(tmp_path: Path, assignment: str, names: str) -> None:
    path = write(tmp_path, STEADY + "surge: {requests: 40, rate_per_s: 2}\n")
    with pytest.raises(ConfigError, match=names):
        load_drill_config(path, MyCatalogue, [assignment])


def test_the_shipped_catalogue_loads_and_takes_overrides() -> None:
    config = load_catalogue(["cancel_storm.settle_s=5"])
    assert isinstance(config, DrillsConfig)
    assert config.cancel_storm.settle_s == 5.0
    assert DRILLS_FILE.parent.name == "drills"
