"""The exposition reader: the same samples as prometheus_client's parser, faster."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.clients.exposition import samples

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "metrics"


def reference(text: str) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                  for family in text_string_to_metric_families(text) for s in family.samples)


def read(text: str) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return sorted((name, tuple(sorted(labels.items())), value)
                  for name, labels, value in samples(text))


@pytest.mark.parametrize("page", ["vllm_busy.txt", "vllm_idle.txt", "loadgen.txt"])
def test_a_real_page_reads_as_prometheus_client_reads_it(page: str) -> None:
    text = (FIXTURES / page).read_text()
    assert read(text) == reference(text)
    assert len(read(text)) > 5


def test_escapes_braces_and_commas_inside_label_values() -> None:
    text = ('# HELP m a metric\n# TYPE m gauge\n'
            'm{path="/a,b}",quote="say \\"hi\\"",nl="x\\ny",bs="c:\\\\d"} 1.5\n')
    assert read(text) == reference(text)
    [(_, labels, value)] = list(samples(text))
    assert labels == {"path": "/a,b}", "quote": 'say "hi"', "nl": "x\ny", "bs": "c:\\d"}
    assert value == 1.5


def test_special_values_timestamps_and_a_trailing_comma() -> None:
    text = "a NaN\nb +Inf\nc -Inf 1700000000000\nd{x=\"1\",} 2e3\n"
    got = {name: value for name, _, value in samples(text)}
    assert math.isnan(got["a"]) and got["b"] == math.inf and got["c"] == -math.inf
    assert got["d"] == 2000.0


@pytest.mark.parametrize(("text", "where"), [
    ("ok 1\nbroken line here\n", "line 2"),
    ('m{x=1} 2\n', "line 1: bad labels"),
    ("m one\n", "line 1: bad value"),
])
def test_a_malformed_line_is_named(text: str, where: str) -> None:
    with pytest.raises(ValueError, match=where):
        list(samples(text))
