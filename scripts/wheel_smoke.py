"""Smoke checks of an installed llm-drill wheel, run by scripts/wheel-check.sh from a
directory outside the checkout with the wheel's venv python:

    python wheel_smoke.py CHECKOUT VENV

1. ``harness`` is imported from VENV, and the checkout is not on ``sys.path``;
2. ``llm-drill render --out DIR`` writes exactly the checkout's committed ``compose/``;
3. ``llm-drill toxiproxy`` starts and answers ``GET /version``, then stops on SIGTERM.

Standard library only (plus the installed package), so it proves nothing by accident.
"""

from __future__ import annotations

import filecmp
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

START_WITHIN_S = 20.0
STOP_WITHIN_S = 10.0


def fail(message: str) -> None:
    sys.exit(f"wheel-check: {message}")


def check_installed(checkout: Path, venv: Path) -> None:
    import harness

    where = Path(harness.__file__).resolve()
    if not where.is_relative_to(venv.resolve()):
        fail(f"harness was imported from {where}, not from the venv {venv}")
    on_path = [p for p in sys.path if p and Path(p).resolve() == checkout.resolve()]
    if on_path:
        fail(f"the checkout {checkout} is on sys.path")
    print(f"ok  harness imported from {where.parent}")


def llm_drill(venv: Path) -> str:
    return str(venv / "bin" / "llm-drill")


def check_render(checkout: Path, venv: Path, out: Path) -> None:
    subprocess.run([llm_drill(venv), "render", "--out", str(out)], check=True)
    committed = checkout / "compose"
    names = sorted(p.name for p in out.iterdir())
    if names != sorted(p.name for p in committed.iterdir()):
        fail(f"render wrote {names}; the checkout's compose/ holds "
             f"{sorted(p.name for p in committed.iterdir())}")
    _, mismatch, errors = filecmp.cmpfiles(out, committed, names, shallow=False)
    if mismatch or errors:
        fail(f"rendered files differ from the checkout's compose/: {mismatch + errors}")
    print(f"ok  llm-drill render wrote {', '.join(names)}")


def first_line(proc: subprocess.Popen[str], within_s: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=within_s):
            fail(f"llm-drill toxiproxy printed nothing within {within_s:.0f}s")
    return proc.stdout.readline().strip()


def check_toxiproxy(venv: Path) -> None:
    subprocess.run([llm_drill(venv), "toxiproxy", "--help"], check=True,
                   stdout=subprocess.DEVNULL)
    proc = subprocess.Popen([llm_drill(venv), "toxiproxy", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = first_line(proc, START_WITHIN_S)
        if not line.startswith("listening on "):
            fail(f"llm-drill toxiproxy said {line!r}, not 'listening on URL'")
        url = line.removeprefix("listening on ")
        with urllib.request.urlopen(f"{url}/version", timeout=5) as response:
            version = response.read().decode().strip()
        if response.status != 200 or not version:
            fail(f"GET {url}/version answered {response.status} {version!r}")
        print(f"ok  llm-drill toxiproxy at {url} answered /version: {version}")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=STOP_WITHIN_S)
    if code != 0:
        fail(f"llm-drill toxiproxy exited {code} on SIGTERM")


def main() -> None:
    checkout, venv = Path(sys.argv[1]), Path(sys.argv[2])
    if Path.cwd().resolve().is_relative_to(checkout.resolve()):
        fail(f"run from outside the checkout, not {Path.cwd()}")
    began = time.monotonic()
    check_installed(checkout, venv)
    with tempfile.TemporaryDirectory(prefix="rendered-", dir=os.getcwd()) as out:
        check_render(checkout, venv, Path(out))
    check_toxiproxy(venv)
    print(f"ok  smoke checks in {time.monotonic() - began:.1f}s")


if __name__ == "__main__":
    main()
