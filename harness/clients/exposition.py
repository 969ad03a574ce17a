"""Prometheus text exposition, read line by line.

``prometheus_client.parser`` walks every label character by character in Python: a
54 KB vLLM ``/metrics`` page took about 0.95 s to parse on the CI host. A thread
parsing pages that slowly holds the GIL most of the time, and the drill's own load
thread in the same process then lags by seconds (streams read late, requests sent
late). This reader handles the same format (comments, labels with escapes, NaN and
infinities, an optional timestamp) with one regular expression per line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_SAMPLE = re.compile(
    r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r"(?:\{(?P<labels>.*)\})?"
    r"[ \t]+(?P<value>\S+)(?:[ \t]+-?\d+)?[ \t]*")
_LABEL = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*(?:,|$)')
_ESCAPE = re.compile(r"\\(.)")
_UNESCAPED = {"n": "\n", '"': '"', "\\": "\\"}


def samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """Each sample line of ``text`` as (name, labels, value); ValueError names the line."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _SAMPLE.fullmatch(stripped)
        if match is None:
            raise ValueError(f"line {number}: not a sample: {stripped[:120]!r}")
        yield match["name"], _labels(match["labels"] or "", number), _value(match["value"],
                                                                           number)


def _labels(text: str, number: int) -> dict[str, str]:
    labels: dict[str, str] = {}
    at = 0
    while at < len(text):
        match = _LABEL.match(text, at)
        if match is None:
            raise ValueError(f"line {number}: bad labels at {text[at:at + 60]!r}")
        value = match[2]
        labels[match[1]] = _unescape(value) if "\\" in value else value
        at = match.end()
    return labels


def _unescape(value: str) -> str:
    return _ESCAPE.sub(lambda m: _UNESCAPED.get(m[1], "\\" + m[1]), value)


def _value(text: str, number: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"line {number}: bad value {text!r}") from None
