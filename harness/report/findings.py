"""Findings: every drill of a run that did not pass (failed, inconclusive, aborted,
interrupted), as markdown ready to paste into a tracker: what did not hold, the
evidence, the alerts seen, and links to the report's timeline and the runbooks.

Counts and timings only, as the journals hold them: never prompt text.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from harness.drill.journal import Journal, read_journals
from harness.files import write_atomic
from harness.report.evidence import RUNBOOKS_SUBDIR
from harness.report.html import REPORT_FILE, drill_anchor

FINDINGS_FILE = "findings.md"
PASSED = "passed"


def findings_markdown(run_dir: Path, journals: Sequence[Journal]) -> str | None:
    """The findings of ``journals`` (in ``read_journals`` order, for the report's
    anchors); None when every drill passed."""
    bad = [(i, j) for i, j in enumerate(journals) if j.outcome != PASSED]
    if not bad:
        return None
    run_ids = ", ".join(dict.fromkeys(j.run_id for j in journals))
    lines = [f"# Findings: {len(bad)} of {len(journals)} drills did not pass",
             "", f"Run {run_ids} in `{run_dir}`.", ""]
    for index, journal in bad:
        lines += _one(run_dir, index, journal)
    return "\n".join(lines).rstrip() + "\n"


def _one(run_dir: Path, index: int, journal: Journal) -> list[str]:
    lines = [f"## {journal.drill}: {journal.outcome.upper()}", "",
             f"- when: {_utc(journal.started_at)} to {_utc(journal.ended_at)} UTC "
             f"({journal.wall_s:.0f} s)"]
    failed = [v for v in journal.verdicts if not v.ok]
    if failed:
        lines.append("- did not hold:")
        lines += [f"  - **{v.property}**: {v.detail}" for v in failed]
    if journal.error:
        lines.append(f"- ended with: {journal.error}")
    held = sum(v.ok for v in journal.verdicts)
    lines.append(f"- held: {held} of {len(journal.verdicts)} properties checked")
    if journal.measurements:
        lines.append("- measured: " + ", ".join(f"{k} {v:g}" for k, v
                                                 in sorted(journal.measurements.items())))
    alerts = sorted({a.name for a in journal.alerts})
    if alerts:
        lines.append("- alerts seen: " + ", ".join(
            f"{a.name} {a.state} at {_utc(a.at)}" for a in journal.alerts))
        lines.append("- runbooks: " + ", ".join(
            f"[{name}]({run_dir / RUNBOOKS_SUBDIR / f'{name}.md'})" for name in alerts))
    lines += [f"- timeline and evidence: [{REPORT_FILE}]"
              f"({run_dir / REPORT_FILE}#{drill_anchor(index, journal.drill)})", ""]
    return lines


def _utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def write_findings(run_dir: Path) -> Path | None:
    """``<run_dir>/findings.md`` when a drill did not pass (None, and no file, when all
    passed)."""
    text = findings_markdown(run_dir, read_journals(run_dir))
    return None if text is None else write_atomic(run_dir / FINDINGS_FILE, text)
