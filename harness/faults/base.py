"""The Fault seam and the base every fault builds on.

A fault is a small frozen dataclass with ``apply()``, ``revert()`` and
``describe()``. :class:`FaultBase` turns it into a context manager whose
revert *always* runs: when the body raises, when the apply itself fails
half-way, and when the apply cannot be verified (unlike Chaos Toolkit, which
skips rollbacks when a run fails). Subclasses implement four small hooks::

    _apply()           make the change
    _verify_applied()  True once the change is observable (else FaultUnverified:
                       the drill is INCONCLUSIVE, it cannot judge a fault it cannot see)
    _revert()          undo it; must be idempotent (it also runs after a failed apply)
    _verify_reverted() True once the undo is observable (else FaultRevertError)

Errors: anything the hooks raise that is not already a :class:`FaultError`
or :class:`ConfigError` is wrapped in FaultApplyError / FaultRevertError with
``raise ... from exc``. If the body raised and the revert fails too, the
revert error propagates, with a note naming the body's exception (which is
also in its ``__context__`` chain).
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self, TypeVar, runtime_checkable

from harness.errors import (
    ConfigError,
    FaultApplyError,
    FaultError,
    FaultRevertError,
    FaultUnverified,
)
from harness.manual import APPLIED, REVERTED, desk_from_env

T = TypeVar("T")


@runtime_checkable
class Fault(Protocol):
    """Anything a drill can inject and take back."""

    def apply(self) -> None: ...

    def revert(self) -> None: ...

    def describe(self) -> str: ...


class FaultBase(abc.ABC):
    """Apply-verify / revert-verify skeleton, usable as ``with fault: ...``."""

    @abc.abstractmethod
    def describe(self) -> str: ...

    @abc.abstractmethod
    def _apply(self) -> None: ...

    @abc.abstractmethod
    def _revert(self) -> None: ...

    def _verify_applied(self) -> bool:
        return True

    def _verify_reverted(self) -> bool:
        return True

    def apply(self) -> None:
        """Apply and verify; on failure the fault is reverted before raising."""
        try:
            self._run(self._apply, FaultApplyError, "apply")
            self._verify()
        except BaseException as exc:
            self._revert_after_failed_apply(exc)
            raise

    def _verify(self) -> None:
        """FaultUnverified (Inconclusive) unless the applied change is observed."""
        try:
            seen = self._verify_applied()
        except (FaultError, ConfigError):
            raise
        except Exception as exc:
            raise FaultUnverified(self.describe(),
                                  f"verifying raised {type(exc).__name__}: {exc}") from exc
        if not seen:
            raise FaultUnverified(self.describe(), "applied but not observed")

    def revert(self) -> None:
        """Revert and verify (idempotent: reverting an absent fault is fine)."""
        self._run(self._revert, FaultRevertError, "revert")
        if not self._run(self._verify_reverted, FaultRevertError, "verify revert of"):
            raise FaultRevertError(f"{self.describe()}: reverted but still observed")

    def _run(self, hook: Callable[[], T], error: type[FaultError], what: str) -> T:
        try:
            return hook()
        except (FaultError, ConfigError):
            raise
        except Exception as exc:
            raise error(f"could not {what} {self.describe()}: {exc}") from exc

    def _revert_after_failed_apply(self, cause: BaseException) -> None:
        """Undo a half-applied fault; the apply error stays the one raised."""
        try:
            self.revert()
        except FaultError as exc:
            cause.add_note(f"reverting {self.describe()} after the failed apply failed too: {exc}")

    def __enter__(self) -> Self:
        desk = desk_from_env()  # a manual game day: the facilitator says when
        if desk is None:
            self.apply()
            return self
        seq = desk.cue(self.describe(), os.environ.get("PYTEST_CURRENT_TEST", ""))
        desk.wait_for_go(seq)
        self.apply()
        desk.note(APPLIED, seq=seq)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.revert()
            desk = desk_from_env()
            if desk is not None:
                desk.note(REVERTED, seq=desk.last_applied())
        except FaultError as revert_error:
            if exc is not None:
                revert_error.add_note(f"while the body had raised {type(exc).__name__}: {exc}")
            raise
