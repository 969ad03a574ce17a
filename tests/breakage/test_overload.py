"""The overload drill turns red on a stack without admission control (every surge reaches
the gateways, nobody is turned away) and on one whose front door sheds without saying
when to come back; the Retry-After drill turns red on clients that come back sooner than
told and on clients that all come back at once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from drills import test_overload
from drills.catalogue import Drill
from harness.drill import LoadSpec, RetryPolicy
from harness.render.templates import render
from harness.topology import Admission, Topology
from tests.breakage.breaks import front_door_config_edited
from tests.breakage.sensitivity import Sensitivity


def without_admission(topology: Topology) -> Callable[[str], str]:
    """haproxy.cfg rendered with admission control off (``max_per_gateway`` 0)."""
    front_door = replace(topology.front_door, admission=Admission(max_per_gateway=0))

    def unlimited(config: str) -> str:
        edited = render("haproxy.cfg.j2", replace(topology, front_door=front_door))
        assert edited != config and "timeout queue" not in edited
        return edited
    return unlimited


def without_retry_after(config: str) -> str:
    """haproxy.cfg whose front door sheds (429, 503) without a Retry-After header."""
    edited = config.replace(" hdr Retry-After 2 ", " ")
    lines = [line for line in edited.splitlines() if "set-header Retry-After" not in line]
    assert edited != config and len(lines) < len(edited.splitlines()), "no Retry-After"
    return "\n".join(lines) + "\n"


@contextmanager
def client_retries(change: Callable[[RetryPolicy], RetryPolicy]) -> Iterator[None]:
    """The Retry-After drill's users run with ``change`` applied to their retry policy."""
    real = test_overload.patient_users

    def changed(drill: Drill) -> LoadSpec:
        spec = real(drill)
        retries = change(spec.policy.retries)
        return replace(spec, policy=replace(spec.policy, retries=retries))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(test_overload, "patient_users", changed)
        yield


def test_fails_without_admission_control(sensitivity: Sensitivity) -> None:
    sensitivity.expect_red(
        "overload", test_overload.run_overload,
        lambda: front_door_config_edited(sensitivity.stack,
                                         without_admission(sensitivity.stack.topology)),
        "the front door turns away what it cannot serve")


def test_fails_when_shed_requests_say_not_when_to_come_back(sensitivity: Sensitivity) -> None:
    sensitivity.expect_red(
        "overload", test_overload.run_overload,
        lambda: front_door_config_edited(sensitivity.stack, without_retry_after),
        "shed requests carry the error schema, the stack's request id and Retry-After")


def test_fails_with_clients_that_come_back_sooner_than_told(sensitivity: Sensitivity) -> None:
    """A client that caps every Retry-After at 0 s: it retries on its own backoff."""
    sensitivity.expect_red(
        "retry_after", test_overload.run_clients_honour_retry_after,
        lambda: client_retries(lambda retries: replace(retries, retry_after_cap_s=0.0)),
        "clients come back no sooner than Retry-After says")


def test_fails_with_clients_that_come_back_together(sensitivity: Sensitivity) -> None:
    """Clients that wait exactly what they were told: a synchronized herd."""
    sensitivity.expect_red(
        "retry_after", test_overload.run_clients_honour_retry_after,
        lambda: client_retries(lambda retries: replace(retries, retry_after_jitter=0.0)),
        "clients spread their retries")
