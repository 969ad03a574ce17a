"""Two runs side by side: each drill's outcome and every measurement, with the delta.

A measurement one run has and the other lacks is shown with the missing side empty
("data incomplete"), never as a zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.history.queries import RecordedRun


@dataclass(frozen=True)
class Delta:
    drill: str
    key: str  # a measurement key, or "outcome"
    a: float | str | None
    b: float | str | None

    @property
    def change(self) -> float | None:
        """b - a, when both are numbers."""
        if isinstance(self.a, float) and isinstance(self.b, float):
            return self.b - self.a
        return None

    @property
    def ratio(self) -> float | None:
        """(b - a) / a, when both are numbers and a is not zero."""
        change = self.change
        if change is None or not isinstance(self.a, float) or self.a == 0:
            return None
        return change / abs(self.a)


def _newest_by_drill(runs: Sequence[RecordedRun]) -> dict[str, RecordedRun]:
    chosen: dict[str, RecordedRun] = {}
    for run in sorted(runs, key=lambda r: r.started_at):
        chosen[run.drill] = run
    return chosen


def compare_runs(a: Sequence[RecordedRun], b: Sequence[RecordedRun]) -> list[Delta]:
    """Every drill of either run (its newest record in each), outcome first, then each
    measurement key of either side, in name order."""
    left, right = _newest_by_drill(a), _newest_by_drill(b)
    deltas: list[Delta] = []
    for drill in sorted(left.keys() | right.keys()):
        ra, rb = left.get(drill), right.get(drill)
        deltas.append(Delta(drill, "outcome", ra.outcome if ra else None,
                            rb.outcome if rb else None))
        ma = ra.measurements if ra else {}
        mb = rb.measurements if rb else {}
        deltas += [Delta(drill, key, _float(ma.get(key)), _float(mb.get(key)))
                   for key in sorted(ma.keys() | mb.keys())]
    return deltas


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)
