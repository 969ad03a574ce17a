"""Open and closed loop scheduling, bounds, stop(), target safety and reachability."""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import threading

import httpx
import pytest

from harness.errors import ConfigError, NotReady, Unreachable
from harness.load import (
    Arrival,
    BackgroundLoad,
    CancelReason,
    LoadRun,
    RequestResult,
    cancel_storm_spec,
    check_target,
    parse_lengths,
    run_load,
    summarize,
)
from harness.load.runner import LOAD_THREAD_NICE, prioritise_this_thread
from harness.waits import Probe, Wait
from tests.fakes import FakeClock
from tests.unit.load.loadfakes import TARGET, FakeServer, spec, sse_http_server


def open_loop(rate: float, **overrides: object) -> dict[str, object]:
    return {"rate": rate, "concurrency": None, **overrides}


async def wait_for_requests(server: FakeServer, count: int) -> None:
    async def probe() -> Probe[None]:
        return Probe(done=len(server.requests) >= count, seen=f"{len(server.requests)}")
    await Wait(within=5.0, interval=0.001).until_async(f"{count} requests", probe)


@pytest.mark.asyncio
async def test_constant_rate_spaces_sends_and_stops_at_the_duration(
        server: FakeServer, clock: FakeClock) -> None:
    server.then(server.ok(gap=0.0))
    load = spec(**open_loop(8.0, arrival=Arrival.CONSTANT, max_requests=100, duration_s=1.0))
    async with server.client() as client:
        results = await LoadRun(client, load, clock=clock).start().wait()
    sent = sorted(r.sent_at for r in results)
    assert len(results) == 8
    assert [b - a for a, b in itertools.pairwise(sent)] == pytest.approx([0.125] * 7)
    assert all(r.schedule_lag_s == 0.0 for r in results)


@pytest.mark.asyncio
async def test_max_requests_bounds_the_run(server: FakeServer, clock: FakeClock) -> None:
    server.then(server.ok(gap=0.0))
    async with server.client() as client:
        results = await LoadRun(client, spec(**open_loop(100.0, max_requests=5)),
                                clock=clock).start().wait()
    assert len(results) == len(server.requests) == 5
    assert len({r.request_id for r in results}) == 5


@pytest.mark.asyncio
async def test_poisson_arrivals_are_seeded_and_have_the_right_mean(server: FakeServer) -> None:
    server.then(server.ok(gap=0.0))

    async def sends(seed: int) -> list[float]:
        load = spec(**open_loop(50.0, max_requests=400, duration_s=3600.0, seed=seed))
        async with server.client() as client:
            results = await LoadRun(client, load, clock=FakeClock()).start().wait()
        return sorted(r.sent_at for r in results)

    first, again, other = await sends(1), await sends(1), await sends(2)
    assert first == again
    assert first != other
    gaps = [b - a for a, b in itertools.pairwise(first)]
    assert statistics.mean(gaps) == pytest.approx(1 / 50, rel=0.15)
    assert statistics.stdev(gaps) == pytest.approx(1 / 50, rel=0.2)  # exponential: sd == mean


@pytest.mark.asyncio
async def test_same_seed_same_prompts(server: FakeServer, clock: FakeClock) -> None:
    server.then(server.ok(gap=0.0))
    load = spec(**open_loop(100.0, max_requests=3, prompt_len=parse_lengths(
        "uniform:5-50", field_name="prompt_len")))
    async with server.client() as client:
        await LoadRun(client, load, clock=clock).start().wait()
        await LoadRun(client, load, clock=clock).start().wait()
    bodies = [b["prompt"] for b in server.bodies()]
    assert bodies[:3] == bodies[3:]
    assert len(set(bodies[:3])) == 3


@pytest.mark.asyncio
async def test_closed_loop_keeps_n_users_in_flight(server: FakeServer, clock: FakeClock) -> None:
    gate = asyncio.Event()
    server.then(server.ok(gate=gate))
    async with server.client() as client:
        run = LoadRun(client, spec(concurrency=3, max_requests=10), clock=clock).start()
        await wait_for_requests(server, 3)
        assert run.in_flight == 3
        assert len(server.requests) == 3
        gate.set()
        results = await run.wait()
    assert len(results) == 10
    assert all(r.ok for r in results)


@pytest.mark.asyncio
async def test_requests_in_flight_are_counted_by_when_they_were_sent(
        server: FakeServer, clock: FakeClock) -> None:
    gate = asyncio.Event()
    server.then(server.ok(gate=gate))
    async with server.client() as client:
        run = LoadRun(client, spec(concurrency=2, max_requests=2), clock=clock).start()
        await wait_for_requests(server, 2)
        sent = clock.wall()
        assert run.sent_before(sent + 0.001) == 2
        assert run.sent_before(sent - 1.0) == 0
        gate.set()
        await run.wait()
    assert run.sent_before(sent + 1.0) == 0  # none in flight once they ended


@pytest.mark.asyncio
async def test_closed_loop_stops_issuing_at_the_duration(server: FakeServer,
                                                         clock: FakeClock) -> None:
    server.then(server.ok(gap=0.5))  # each request takes 1.5 s of fake time
    async with server.client() as client:
        results = await LoadRun(client, spec(max_requests=100, duration_s=10.0),
                                clock=clock).start().wait()
    assert len(results) == 7  # sent at 0, 1.5, ..., 9.0


@pytest.mark.asyncio
async def test_stop_cancels_in_flight_after_the_drain(server: FakeServer,
                                                      clock: FakeClock) -> None:
    gate = asyncio.Event()  # never set: the server never answers
    server.then(server.ok(gate=gate))
    load = spec(**open_loop(100.0, max_requests=50, max_in_flight=2, drain_s=0.0))
    async with server.client() as client:
        run = LoadRun(client, load, clock=clock).start()
        await wait_for_requests(server, 2)
        run.stop()
        results = await run.wait()
    assert run.issued == 2
    assert [r.cancelled for r in results] == [CancelReason.STOP] * 2


@pytest.mark.asyncio
async def test_run_never_outlives_duration_plus_drain(server: FakeServer) -> None:
    server.then(server.ok(gate=asyncio.Event()))
    load = spec(concurrency=4, max_requests=4, duration_s=0.05, drain_s=0.05)
    async with server.client() as client:
        results = await LoadRun(client, load).start().wait(within=2.0)
    assert len(results) == 4
    assert {r.cancelled for r in results} == {CancelReason.STOP}


@pytest.mark.asyncio
async def test_wait_has_a_deadline(server: FakeServer) -> None:
    server.then(server.ok(gate=asyncio.Event()))
    async with server.client() as client:
        run = LoadRun(client, spec(duration_s=60.0, drain_s=0.0)).start()
        with pytest.raises(NotReady, match="load run"):
            await run.wait(within=0.05)
        run.stop()
        results = await run.wait()
    assert [r.cancelled for r in results] == [CancelReason.STOP]


@pytest.mark.asyncio
async def test_a_failing_sink_fails_the_run(server: FakeServer, clock: FakeClock) -> None:
    class Broken:
        def record(self, result: RequestResult) -> None:
            raise OSError("disk full")

    server.then(server.ok())
    async with server.client() as client:
        with pytest.raises(OSError, match="disk full"):
            await LoadRun(client, spec(), clock=clock, sinks=[Broken()]).start().wait()


def test_remote_targets_are_refused_unless_allowed() -> None:
    with pytest.raises(ConfigError, match=r"example\.com.*\[target\]|\[target\].*example\.com"):
        check_target("http://example.com:8000")
    assert check_target("http://example.com:8000", allow_hosts=["example.com"]) == "example.com"
    assert check_target("http://localhost:1") == "localhost"
    assert check_target("http://[::1]:1") == "::1"
    with pytest.raises(ConfigError, match="not an http"):
        check_target("ftp://127.0.0.1/")


def test_load_run_refuses_a_remote_target() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    with pytest.raises(ConfigError, match="refusing"):
        LoadRun(client, spec(target="http://10.1.2.3:8000"))


@pytest.mark.asyncio
async def test_unreachable_target_fails_before_any_load(server: FakeServer) -> None:
    server.then(server.raises(lambda r: httpx.ConnectError("refused", request=r)))
    async with server.client() as client:
        with pytest.raises(Unreachable, match=TARGET.replace(".", r"\.")):
            await run_load(client, spec())
    assert [r.url.path for r in server.requests] == ["/v1/models"]


def test_cancel_storm_spec_is_closed_loop_with_one_request_per_stream() -> None:
    storm = cancel_storm_spec(TARGET, "tiny", streams=200, after_chunks=3)
    assert (storm.concurrency, storm.max_requests) == (200, 200)
    assert storm.policy.cancel.after_chunks == 3
    assert storm.ignore_eos


def test_background_load_runs_in_a_thread_against_a_real_server() -> None:
    with sse_http_server() as url:
        load = spec(target=url, concurrency=2, max_requests=6,
                    output_len=parse_lengths("4", field_name="output_len"))
        with BackgroundLoad(load) as background:
            # a drill would inject its fault here, while load flows
            Wait(within=10.0, interval=0.01).until_true(
                "two results", lambda: len(background.results()) >= 2)
        results = background.results()
    summary = summarize(results)
    assert summary.completed + summary.cancelled == len(results) > 0
    assert all(r.output_tokens == 4 for r in results if r.ok)
    assert summary.failed == 0


def test_background_load_names_an_unreachable_target() -> None:
    with sse_http_server() as url:
        pass  # the server is gone: nothing answers on its port any more
    with pytest.raises(Unreachable, match=url.replace(".", r"\.")):
        BackgroundLoad(spec(target=url)).start()


def test_the_load_thread_runs_at_a_raised_priority_when_allowed() -> None:
    """Root may lower a thread's nice value; anyone else keeps the default (no error)."""
    seen: list[tuple[bool, int]] = []

    def in_a_thread() -> None:
        allowed = prioritise_this_thread()
        seen.append((allowed, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join()
    [(allowed, nice)] = seen
    if os.geteuid() == 0:
        assert allowed and nice == LOAD_THREAD_NICE
    else:
        assert not allowed and nice == os.getpriority(os.PRIO_PROCESS, 0)

