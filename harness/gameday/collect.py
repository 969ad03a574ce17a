"""Resolve a plan's drill selections to the pytest tests they name, touching nothing:
``pytest --collect-only`` imports the drills but starts no stack (the stack is a fixture,
and collecting runs none)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.gameday.plan import LoadedPlan

COLLECT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Collected:
    select: str
    node_ids: tuple[str, ...]  # relative to the drills folder's parent (pytest's rootdir)


def collect_argv(drills_dir: Path, select: str, python: str = sys.executable) -> list[str]:
    return [python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
            str(drills_dir / select)]


def node_ids(stdout: str) -> tuple[str, ...]:
    """The test ids of ``pytest --collect-only -q`` output."""
    return tuple(line.strip() for line in stdout.splitlines() if "::" in line)


def collect(drills_dir: Path, select: str, python: str = sys.executable) -> Collected:
    """The tests ``select`` names; an unknown selection lists the drills there are."""
    done = subprocess.run(collect_argv(drills_dir, select, python), cwd=drills_dir.parent,
                          capture_output=True, text=True, timeout=COLLECT_TIMEOUT_S,
                          check=False)
    found = node_ids(done.stdout)
    if done.returncode != 0 or not found:
        raise LookupError(_last_lines(done.stdout + done.stderr))
    return Collected(select, found)


def known_drills(drills_dir: Path, python: str = sys.executable) -> tuple[str, ...]:
    try:
        return collect(drills_dir, "", python).node_ids
    except LookupError:
        return ()


def resolve(loaded: LoadedPlan, python: str = sys.executable) -> tuple[Collected, ...]:
    """Every planned drill's tests; errors name the plan's line and list the known ones."""
    if not loaded.drills_dir.is_dir():
        raise loaded.error(f"no drills folder at {loaded.drills_dir}", "drills_dir")
    resolved = []
    for index, drill in enumerate(loaded.plan.drills):
        try:
            resolved.append(collect(loaded.drills_dir, drill.select, python))
        except LookupError as exc:
            known = ", ".join(_relative(i, loaded.drills_dir)
                              for i in known_drills(loaded.drills_dir, python))
            raise loaded.error(f"selects no drill ({exc}); known: {known or 'none'}",
                               f"drills[{index}].select") from exc
    return tuple(resolved)


def _relative(node_id: str, drills_dir: Path) -> str:
    return node_id.removeprefix(f"{drills_dir.name}/")


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-count:]) or "pytest printed nothing"
