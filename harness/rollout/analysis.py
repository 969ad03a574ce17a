"""One analysis step's verdict: does the canary hold up against stable?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.rollout.signals import ProbeResult, Reading
from harness.topology import RolloutPolicy


@dataclass(frozen=True)
class OutputCheck:
    """The canary's greedy answers against stable's, prompt by prompt."""

    compared: int
    matching: int
    first_mismatch: str = ""

    @property
    def match_ratio(self) -> float | None:
        return self.matching / self.compared if self.compared else None


@dataclass(frozen=True)
class Verdict:
    """A step's outcome; ``failures`` names every check the canary failed."""

    failures: tuple[str, ...]
    ttft_ratio: float | None
    tps_ratio: float | None
    error_ratio: float | None
    output_match_ratio: float | None
    canary: Reading
    stable: Reading

    @property
    def passed(self) -> bool:
        return not self.failures


def compare_outputs(canary: Sequence[ProbeResult], stable: Sequence[ProbeResult]) -> OutputCheck:
    """Token-for-token comparison of the answers both gave to the same prompt."""
    pairs = [(c, s) for c, s in zip(canary, stable, strict=True) if c.ok and s.ok]
    differ = [(n, c, s) for n, (c, s) in enumerate(pairs) if not c.same_answer(s)]
    first = ""
    if differ:
        first = mismatch_summary(*differ[0])
    return OutputCheck(len(pairs), len(pairs) - len(differ), first)


def mismatch_summary(index: int, canary: ProbeResult, stable: ProbeResult) -> str:
    """Where two answers part, in counts only: decisions land in journals and reports,
    which never hold prompt or completion text."""
    by_ids = bool(canary.token_ids and stable.token_ids)
    ours: Sequence[object] = canary.token_ids if by_ids else canary.text
    theirs: Sequence[object] = stable.token_ids if by_ids else stable.text
    unit = "token" if by_ids else "character"
    at = next((n for n, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
              min(len(ours), len(theirs)))
    return (f"seeded prompt #{index}: answers part at {unit} {at} "
            f"(canary {len(ours)}, stable {len(theirs)} {unit}s)")


def judge(policy: RolloutPolicy, canary: Reading, stable: Reading,
          output: OutputCheck) -> Verdict:
    ttft_ratio = _ratio(canary.ttft_s, stable.ttft_s, floor=1e-3)
    tps_ratio = _ratio(canary.tokens_per_s, stable.tokens_per_s, floor=1e-6)
    failures = (*_errors(policy, canary), *_ttft(policy, canary, stable, ttft_ratio),
                *_tps(policy, tps_ratio), *_output(output))
    return Verdict(failures, ttft_ratio, tps_ratio, canary.error_ratio, output.match_ratio,
                   canary, stable)


def _ratio(canary: float | None, stable: float | None, *, floor: float) -> float | None:
    if canary is None or stable is None:
        return None
    return canary / max(stable, floor)


def _errors(policy: RolloutPolicy, canary: Reading) -> tuple[str, ...]:
    if canary.error_ratio is None:
        return ("no canary requests to judge",)
    if canary.error_ratio > policy.max_error_ratio:
        return (f"error ratio {canary.error_ratio:.2f} over {policy.max_error_ratio}",)
    return ()


def _ttft(policy: RolloutPolicy, canary: Reading, stable: Reading,
          ratio: float | None) -> tuple[str, ...]:
    if ratio is None or canary.ttft_s is None or stable.ttft_s is None:
        return ()
    slower_by = canary.ttft_s - stable.ttft_s
    if ratio > policy.max_ttft_ratio and slower_by > policy.ttft_slack_s:
        return (f"TTFT p50 {canary.ttft_s:.3f}s is {ratio:.1f}x stable's {stable.ttft_s:.3f}s "
                f"(bound {policy.max_ttft_ratio}x and +{policy.ttft_slack_s}s)",)
    return ()


def _tps(policy: RolloutPolicy, ratio: float | None) -> tuple[str, ...]:
    if ratio is not None and ratio < policy.min_tps_ratio:
        return (f"tokens/s {ratio:.2f}x stable's (bound {policy.min_tps_ratio}x)",)
    return ()


def _output(output: OutputCheck) -> tuple[str, ...]:
    if output.compared and output.matching < output.compared:
        return (f"output differs from stable on {output.compared - output.matching} of "
                f"{output.compared} seeded prompts ({output.first_mismatch[:160]})",)
    return ()
