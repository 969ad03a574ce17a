"""Every silenced check says why: a ``type: ignore`` names its error code and carries a
reason after it, a ``noqa`` names its rule and carries a reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREES = ("harness", "drills", "tests", "benchmarks", "scripts")
IGNORE = re.compile(r"#\s*type:\s*ignore(?P<code>\[[^\]]+\])?(?P<rest>.*)$")
NOQA = re.compile(r"#\s*noqa(?P<code>:\s*[A-Z]+\d+(?:,\s*[A-Z]+\d+)*)?(?P<rest>.*)$")


def unexplained(line: str) -> bool:
    for pattern in (IGNORE, NOQA):
        found = pattern.search(line)
        if found and (not found["code"] or not found["rest"].strip(" #")):
            return True
    return False


def test_an_ignore_without_code_or_reason_is_caught() -> None:
    assert unexplained("x = f()  # type: ignore")
    assert unexplained("x = f()  # type: ignore[arg-type]")
    assert unexplained("import os  # noqa: F401")
    assert not unexplained("x = f()  # type: ignore[arg-type]  # the stub is wrong")
    assert not unexplained("import os  # noqa: F401 - re-exported")


@pytest.mark.parametrize("tree", TREES)
def test_every_ignore_says_why(tree: str) -> None:
    bad = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
           for path in sorted((ROOT / tree).rglob("*.py")) if path != Path(__file__)
           for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
           if unexplained(line)]
    assert bad == []
