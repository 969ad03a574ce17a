"""Distribution specs and LoadSpec bounds: errors name the field."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.load import CancelPolicy, RetryPolicy, Timeouts, parse_lengths
from tests.unit.load.loadfakes import spec


def test_fixed_and_bare_numbers() -> None:
    rng = random.Random(0)
    assert parse_lengths("128", field_name="f").sample(rng) == 128
    assert parse_lengths("fixed:7", field_name="f").sample(rng) == 7


def test_uniform_stays_in_range_and_covers_it() -> None:
    lengths = parse_lengths("uniform:3-6", field_name="f")
    rng = random.Random(0)
    assert {lengths.sample(rng) for _ in range(200)} == {3, 4, 5, 6}
    assert lengths.maximum == 6


def test_file_of_lengths(tmp_path: Path) -> None:
    path = tmp_path / "lengths.txt"
    path.write_text("10\n20\n\n30\n")
    lengths = parse_lengths(f"file:{path}", field_name="output_len")
    assert set(lengths.values) == {10, 20, 30}


@pytest.mark.parametrize(("text", "needle"), [
    ("gaussian:3", "unknown distribution"), ("abc", "not an integer"), ("0", "outside"),
    ("uniform:9-3", "low 9 > high 3"), ("uniform:5", "needs A-B"), ("fixed:-1", "outside"),
])
def test_bad_specs_name_the_field(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=rf"\[prompt_len\].*{needle}") as info:
        parse_lengths(text, field_name="prompt_len")
    assert info.value.field == "prompt_len"


def test_missing_or_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read") as info:
        parse_lengths(f"file:{tmp_path / 'nope'}", field_name="output_len")
    assert info.value.field == "output_len"
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        parse_lengths(f"file:{tmp_path / 'empty'}", field_name="output_len")


@pytest.mark.parametrize(("overrides", "field"), [
    ({"max_requests": 0}, "max_requests"), ({"max_requests": 10**6}, "max_requests"),
    ({"duration_s": 0}, "duration_s"), ({"duration_s": 7200}, "duration_s"),
    ({"rate": 5.0}, "rate/concurrency"), ({"concurrency": None}, "rate/concurrency"),
    ({"concurrency": 0}, "concurrency"), ({"rate": -1.0, "concurrency": None}, "rate"),
])
def test_load_spec_bounds(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        spec(**overrides)
    assert info.value.field == field


def test_policy_bounds() -> None:
    with pytest.raises(ConfigError, match=r"retries\.max_attempts"):
        RetryPolicy(max_attempts=0)
    for jitter in (-0.1, 10.5, float("nan")):
        with pytest.raises(ConfigError) as info:
            RetryPolicy(retry_after_jitter=jitter)
        assert info.value.field == "retries.retry_after_jitter"
    assert RetryPolicy(retry_after_jitter=0.0).retry_after_jitter == 0.0
    assert RetryPolicy(retry_after_jitter=10.0).retry_after_jitter == 10.0
    assert RetryPolicy().retry_after_jitter == 1.0
    with pytest.raises(ConfigError, match=r"timeouts\.read"):
        Timeouts(read=0)
    with pytest.raises(ConfigError, match=r"cancel\.after_chunks"):
        CancelPolicy(after_chunks=-1)
