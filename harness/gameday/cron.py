"""When a schedule fires: a cron expression (parsed by cronsim) or Chaos Mesh's ``@every``.

Accepted, in UTC:

- five cron fields, ``minute hour day-of-month month day-of-week`` (what crontab,
  Kubernetes and Chaos Mesh take), parsed and evaluated by cronsim (the parser
  healthchecks.io runs), never by hand;
- the usual macros ``@yearly`` ``@annually`` ``@monthly`` ``@weekly`` ``@daily``
  ``@midnight`` ``@hourly`` (spelled out as five fields);
- ``@every DURATION`` (Chaos Mesh, Go-style: ``90s``, ``15m``, ``1h30m``), counted from
  the schedule's anchor (when it was created).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cronsim import CronSim, CronSimError

MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
          "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
          "@hourly": "0 * * * *"}
EVERY = "@every"
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")
#: Missed fire times are counted up to this many (Kubernetes stops at 100, then warns).
MAX_COUNTED = 1000


class CronError(ValueError):
    """A schedule expression that cannot be parsed (the message says why)."""


def parse_duration(text: str) -> float:
    """``1h30m`` -> 5400.0; Go's units h, m, s, at least one second in all."""
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text or total < 1:
        raise CronError(f"{EVERY} takes a duration like 90s, 15m or 1h30m (at least 1s), "
                        f"not {text!r}")
    return total


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class Timing:
    """A parsed schedule expression: ``cron`` (five fields) or ``every_s`` (``@every``)."""

    expression: str
    cron: str | None = None
    every_s: float | None = None

    def next_after(self, epoch: float, anchor: float) -> float:
        """The first fire time strictly after ``epoch`` (``@every`` counts from ``anchor``)."""
        if self.every_s is not None:
            steps = max(0, int((epoch - anchor) // self.every_s) + 1)
            return anchor + steps * self.every_s
        assert self.cron is not None  # one of the two is always set by parse_timing
        return next(CronSim(self.cron, _utc(epoch))).timestamp()

    def latest_due(self, after: float, now: float,
                   anchor: float) -> tuple[float | None, int]:
        """The newest fire time in ``(after, now]`` and how many earlier ones it hides
        (missed, counted up to :data:`MAX_COUNTED`); ``(None, 0)`` when none is due."""
        due, earlier = None, 0
        t = self.next_after(after, anchor)
        while t <= now:
            if due is not None:
                earlier += 1
            due = t
            if earlier >= MAX_COUNTED:  # far behind: jump to the newest directly
                return self._newest_until(now, anchor), earlier
            t = self.next_after(t, anchor)
        return due, earlier

    def _newest_until(self, now: float, anchor: float) -> float:
        if self.every_s is not None:
            return anchor + ((now - anchor) // self.every_s) * self.every_s
        assert self.cron is not None
        # reverse from a time with microseconds includes its own second: newest <= now
        return next(CronSim(self.cron, _utc(now) + timedelta(microseconds=1),
                            reverse=True)).timestamp()


def parse_timing(expression: str) -> Timing:
    """Parse a schedule expression; :class:`CronError` names what is wrong."""
    text = " ".join(expression.split())
    if text.startswith(EVERY):
        return Timing(text, every_s=parse_duration(text[len(EVERY):].strip()))
    cron = MACROS.get(text.lower(), text)
    if len(cron.split()) != 5:
        raise CronError(f"expected five cron fields (minute hour day-of-month month "
                        f"day-of-week), a macro ({', '.join(MACROS)}) or '@every 15m', "
                        f"not {expression!r}")
    try:
        CronSim(cron, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise CronError(f"{expression!r}: {exc}") from exc
    return Timing(text, cron=cron)


def cron_fields(timing: Timing) -> CronSim:
    """The parsed fields of a cron timing (sets of minutes, hours, days, months, weekdays)."""
    if timing.cron is None:
        raise CronError(f"{timing.expression!r} is an interval, not a calendar expression")
    return CronSim(timing.cron, datetime(2000, 1, 1, tzinfo=UTC))
