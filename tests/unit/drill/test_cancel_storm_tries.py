"""The cancel storm's tries as the front door logged them: a user it turned away comes
back as Retry-After says; every try before a stream's last must have been shed."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from drills.catalogue import Drill
from drills.test_cancel_storm import WaveTries
from harness.load.result import RequestResult
from harness.observe.front_door_log import FrontDoorLog
from tests.unit.drill.fakestack import FakeRuntime, FakeStack

LOG = (Path(__file__).parents[2] / "fixtures" / "logs" / "frontdoor.log").read_text()
ARRIVED = {rid: r.arrived_at for rid, r in FrontDoorLog.parse(LOG).requests.items()}


def stream(client_id: str, first_try: str, last_try: str | None,
           status: int | None = 200) -> RequestResult:
    """A stream the client sent as ``client_id``, whose last try the front door answered
    as ``last_try`` (the stack's id in its response; None: no answer)."""
    sent = ARRIVED[first_try]
    ended = ARRIVED.get(last_try or "", sent)
    return RequestResult(request_id=client_id, sent_at=sent, schedule_lag_s=0.0, ttft_s=None,
                         itl_s=(), e2e_s=None, elapsed_s=ended - sent + 1,
                         output_tokens=0, prompt_tokens=None, chunks=0, status=status,
                         stack_request_id=last_try)


def tries_of(tmp_path: Path, *results: RequestResult) -> WaveTries:
    fake = FakeStack()
    runtime = FakeRuntime(fake.topology, logs={fake.topology.front_door.name: [LOG]})
    # WaveTries reads the stack, never the catalogue: a drill of no catalogue serves
    return WaveTries.of(cast(Drill, fake.drill(tmp_path, runtime)), results)


def test_a_try_shed_before_the_last_is_counted_as_retried(tmp_path: Path) -> None:
    tries = tries_of(tmp_path, stream("adf328f2-000059", "fd-shed1", "fd-shed2"),
                     stream("adf328f2-000057", "fd-c", "fd-c"))

    assert (tries.retried_after_shed, tries.not_shed) == (1, ())


def test_an_earlier_try_the_front_door_did_not_shed_is_named(tmp_path: Path) -> None:
    """A 504 the client's retry would hide (its next try found no front door)."""
    tries = tries_of(tmp_path, stream("adf328f2-000060", "fd-timeout", None, status=None))

    assert (tries.retried_after_shed, tries.not_shed) == (0, ("fd-timeout 504 sH--",))
