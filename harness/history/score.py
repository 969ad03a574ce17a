"""The resilience score of a stack: SLO-weighted, decaying when drills go stale, explained.

For every drill recorded against the stack, over its last N runs:

- each **property** the drill asserted (a verdict) has a severity: the severity of the
  alert it names (``NodeDown goes firing`` -> the ``NodeDown`` rule's ``severity`` label),
  else ``critical`` (the drill's own serving properties are its SLOs). A critical property
  weighs 3, a warning 1 (krkn's weights);
- its **success** is the share of the runs in which it held; a run that never got to
  assert it (it failed earlier) or could not prove it (inconclusive) counts as not held;
- the drill's **freshness** is 1 while its newest run is within the freshness window, then
  halves every half-life (Gremlin's decay: an old pass proves less and less).

score = 100 x sum(weight x success x freshness) / sum(weight), over every property of every
drill. Drills never recorded are not in the sum: the explanation lists what is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.history.queries import RecordedRun
from harness.history.trends import DAY_S, by_drill

SEVERITY_WEIGHTS: Mapping[str, int] = {"critical": 3, "warning": 1}
DEFAULT_SEVERITY = "critical"


@dataclass(frozen=True)
class ScoreSettings:
    last: int = 10  # runs per drill
    fresh_s: float = 7 * DAY_S  # full weight while the newest run is this recent
    half_life_s: float = 7 * DAY_S  # then the drill's credit halves every half-life


@dataclass(frozen=True)
class PropertyScore:
    name: str  # the property
    severity: str
    weight: int
    held: int
    runs: int

    @property
    def success(self) -> float:
        return self.held / self.runs if self.runs else 0.0


@dataclass(frozen=True)
class DrillScore:
    drill: str
    age_s: float  # since its newest run
    freshness: float  # 0..1
    properties: tuple[PropertyScore, ...]

    @property
    def earned(self) -> float:
        return sum(p.weight * p.success for p in self.properties) * self.freshness

    @property
    def weight(self) -> int:
        return sum(p.weight for p in self.properties)


@dataclass(frozen=True)
class Score:
    stack: str
    drills: tuple[DrillScore, ...]

    @property
    def value(self) -> float:
        """0..100; 0 for a stack with nothing recorded."""
        total = sum(d.weight for d in self.drills)
        return 100.0 * sum(d.earned for d in self.drills) / total if total else 0.0


def property_severity(prop: str, severities: Mapping[str, str]) -> str:
    """The severity of the alert a property names (its first word), else critical."""
    named = severities.get(prop.split(" ", 1)[0], DEFAULT_SEVERITY)
    return named if named in SEVERITY_WEIGHTS else DEFAULT_SEVERITY


def freshness(age_s: float, settings: ScoreSettings) -> float:
    if age_s <= settings.fresh_s:
        return 1.0
    return math.pow(0.5, (age_s - settings.fresh_s) / settings.half_life_s)


def drill_score(runs: Sequence[RecordedRun], now: float, settings: ScoreSettings) -> DrillScore:
    window = sorted(runs, key=lambda r: r.started_at, reverse=True)[:settings.last]
    severities: dict[str, str] = {}
    for run in reversed(window):  # the newest run's labels win
        severities.update(run.severities)
    asserted = dict.fromkeys(v.name for run in reversed(window) for v in run.verdicts)
    properties = []
    for prop in asserted:
        held = sum(any(v.name == prop and v.ok for v in run.verdicts) for run in window)
        severity = property_severity(prop, severities)
        properties.append(PropertyScore(prop, severity, SEVERITY_WEIGHTS[severity], held,
                                        len(window)))
    age = max(0.0, now - window[0].started_at)
    return DrillScore(window[0].drill, age, freshness(age, settings), tuple(properties))


def stack_score(stack: str, runs: Sequence[RecordedRun], now: float,
                settings: ScoreSettings = ScoreSettings()) -> Score:
    """The score of ``stack`` from its recorded runs (other stacks' runs are ignored)."""
    mine = [r for r in runs if r.stack == stack]
    return Score(stack, tuple(drill_score(group, now, settings)
                              for _, group in sorted(by_drill(mine).items())))


def explain(score: Score) -> list[str]:
    """The score, line by line: every property's weight and success, every drill's decay."""
    lines = [f"stack {score.stack}: score {score.value:.1f} / 100 = 100 x "
             f"sum(weight x success x freshness) / sum(weight)"]
    for drill in score.drills:
        lines.append(f"  {drill.drill}: newest run {drill.age_s / DAY_S:.1f} days ago -> "
                     f"freshness x{drill.freshness:.2f}; "
                     f"earned {drill.earned:.2f} of {drill.weight}")
        lines += [f"    {p.severity:<8} x{p.weight}  {p.held}/{p.runs} held "
                  f"({p.success:.0%})  {p.name}" for p in drill.properties]
    total = sum(d.weight for d in score.drills)
    lines.append(f"  total: {sum(d.earned for d in score.drills):.2f} of {total}")
    return lines
