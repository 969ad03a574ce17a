"""``llm-drill load``: a bounded load run from the command line.

    llm-drill load --target http://127.0.0.1:18080 --rate 5 --duration 60 --out results.jsonl

``--model`` defaults to the one model the target serves (``GET /v1/models``; an error
lists them when there are several or none). ``--max-requests`` defaults to a bound
derived from rate x duration with room for Poisson bursts (a closed loop, which has no
rate, must give it). Prints a live progress line and a final table, which says whether
the model and the bound were given or found; results stream to ``--out`` and to the
client-side Prometheus exporter. Exit code 0 when every request
completed (or was cancelled on purpose), 1 when some failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from harness.errors import ConfigError, Unreachable
from harness.load.result import ErrorType
from harness.load.runner import LoadRun, ResultSink, make_client
from harness.load.safety import PROBE_PATH, PROBE_TIMEOUT_S, check_target
from harness.load.sinks import JsonlSink, LoadExporter, default_exporter_port
from harness.load.spec import (
    MAX_REQUESTS,
    Api,
    Arrival,
    CancelPolicy,
    ClientPolicy,
    LoadSpec,
    RetryPolicy,
    Timeouts,
    parse_lengths,
)
from harness.load.stats import SLO, Stat, Summary, summarize

REFRESH_S = 0.25
#: A derived --max-requests is rate x duration plus this many standard deviations of
#: Poisson arrivals: it stops a runaway loop without cutting a fair run short.
BOUND_SIGMAS = 4


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``load`` subcommand."""
    parser = subparsers.add_parser("load", help="send a bounded streaming load to a target",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_target(parser)
    _add_shape(parser)
    _add_hygiene(parser)
    _add_output(parser)
    parser.set_defaults(func=run_cli)


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", required=True, help="base URL, e.g. http://127.0.0.1:18080")
    parser.add_argument("--model", help="served model name (default: the one model the "
                        "target lists at /v1/models)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="HOST",
                        help="allow a non-loopback host the topology does not name")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rate", type=float, help="open loop: requests per second")
    mode.add_argument("--concurrency", type=int, help="closed loop: concurrent users")


def _add_shape(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, required=True, help="seconds (max 3600)")
    parser.add_argument("--max-requests", type=int,
                        help="count bound (default with --rate: rate x duration + "
                             f"{BOUND_SIGMAS} sigma of Poisson arrivals)")
    parser.add_argument("--arrival", choices=[a.value for a in Arrival], default="poisson")
    parser.add_argument("--api", choices=[a.value for a in Api], default="completions")
    parser.add_argument("--prompt-len", default="32", help="N | uniform:A-B | file:PATH (words)")
    parser.add_argument("--output-len", default="64", help="N | uniform:A-B | file:PATH (tokens)")
    parser.add_argument("--no-ignore-eos", action="store_true", help="let the model stop early")
    parser.add_argument("--no-stream", action="store_true", help="non-streaming requests")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drain", type=float, default=30.0, help="seconds in-flight may finish")


def _add_hygiene(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--retries", type=int, default=0, help="retries per request (0: off)")
    parser.add_argument("--retry-after-jitter", type=float, default=1.0, metavar="J",
                        help="a retry told Retry-After: T waits T x (1 + U(0, J)) so told "
                             "clients do not return as one herd (0: exactly T; max 10)")
    parser.add_argument("--connect-timeout", type=float)
    parser.add_argument("--read-timeout", type=float)
    parser.add_argument("--idle-timeout", type=float, help="max gap between stream chunks")
    parser.add_argument("--cancel-after-chunks", type=int)
    parser.add_argument("--cancel-after-s", type=float)
    parser.add_argument("--slo-ttft", type=float, help="goodput SLO on TTFT (s)")
    parser.add_argument("--slo-tpot", type=float, help="goodput SLO on TPOT (s)")


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="append results to this JSONL file")
    parser.add_argument("--exporter-port", type=int,
                        help="Prometheus exporter port (default: topology load_exporter.port)")
    parser.add_argument("--no-exporter", action="store_true")
    parser.add_argument("--record-text", action="store_true",
                        help="keep prompt and completion text in results (off: counts only)")


@dataclass(frozen=True)
class RunChoices:
    """The model and the request bound a run uses, and where each came from."""

    model: str
    model_origin: str
    max_requests: int
    max_requests_origin: str

    def lines(self) -> tuple[str, str]:
        return (f"model: {self.model} ({self.model_origin})",
                f"max requests: {self.max_requests} ({self.max_requests_origin})")


def models_url(target: str) -> str:
    return target.rstrip("/") + PROBE_PATH


def served_models(client: httpx.Client, target: str) -> tuple[str, ...]:
    """The model ids ``GET <target>/v1/models`` lists (Unreachable names the URL)."""
    url = models_url(target)
    expected = f"an OpenAI-compatible server answering GET {PROBE_PATH}"
    try:
        response = client.get(url, timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise Unreachable(url, expected, f"{type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise Unreachable(url, expected, f"HTTP {response.status_code}")
    try:
        entries = response.json()["data"]
        return tuple(str(entry["id"]) for entry in entries)
    except (ValueError, KeyError, TypeError) as exc:
        raise Unreachable(url, expected, "the answer is not an OpenAI model list") from exc


def only_model(models: Sequence[str], url: str) -> str:
    """The one model in ``models``; ConfigError lists them when there are several or none."""
    if len(models) == 1:
        return models[0]
    if not models:
        raise ConfigError(f"{url} lists no model; pass --model NAME", field="model")
    raise ConfigError(f"{url} lists {len(models)} models ({', '.join(models)}); "
                      "pick one with --model NAME", field="model")


def choose_model(ns: argparse.Namespace, client: httpx.Client) -> tuple[str, str]:
    if ns.model is not None:
        return ns.model, "given"
    check_target(ns.target, ns.allow_host)  # before the first request goes there
    url = models_url(ns.target)
    return only_model(served_models(client, ns.target), url), f"the one model {url} lists"


def derived_max_requests(rate: float, duration_s: float) -> int:
    """rate x duration plus BOUND_SIGMAS standard deviations of Poisson arrivals, capped."""
    expected = rate * duration_s
    return min(MAX_REQUESTS, math.ceil(expected + BOUND_SIGMAS * math.sqrt(expected)) + 1)


def choose_max_requests(ns: argparse.Namespace) -> tuple[int, str]:
    if ns.max_requests is not None:
        return ns.max_requests, "given"
    if ns.rate is None:
        raise ConfigError("give --max-requests with --concurrency: a closed loop has no "
                          "rate to derive a bound from", field="max_requests")
    bound = derived_max_requests(ns.rate, ns.duration)
    capped = f", capped at {MAX_REQUESTS}" if bound == MAX_REQUESTS else ""
    return bound, (f"derived: rate {ns.rate:g}/s x {ns.duration:g} s + {BOUND_SIGMAS} sigma"
                   f"{capped}")


def resolve_choices(ns: argparse.Namespace, client: httpx.Client | None = None) -> RunChoices:
    """The run's model and bound: as given, else found (``/v1/models``) or derived."""
    max_requests, bound_origin = choose_max_requests(ns)
    if client is None:
        with httpx.Client() as own:
            model, model_origin = choose_model(ns, own)
    else:
        model, model_origin = choose_model(ns, client)
    return RunChoices(model, model_origin, max_requests, bound_origin)


def build_spec(ns: argparse.Namespace, choices: RunChoices | None = None) -> LoadSpec:
    """The LoadSpec the arguments describe (ConfigError names a bad field)."""
    chosen = choices or resolve_choices(ns)
    policy = ClientPolicy(
        timeouts=Timeouts(connect=ns.connect_timeout, read=ns.read_timeout,
                          stream_idle=ns.idle_timeout),
        retries=RetryPolicy(max_attempts=ns.retries + 1,
                            retry_after_jitter=ns.retry_after_jitter),
        cancel=CancelPolicy(after_chunks=ns.cancel_after_chunks, after_s=ns.cancel_after_s))
    return LoadSpec(target=ns.target, model=chosen.model, max_requests=chosen.max_requests,
                    duration_s=ns.duration, rate=ns.rate, concurrency=ns.concurrency,
                    arrival=Arrival(ns.arrival), api=Api(ns.api),
                    prompt_len=parse_lengths(ns.prompt_len, field_name="prompt_len"),
                    output_len=parse_lengths(ns.output_len, field_name="output_len"),
                    ignore_eos=not ns.no_ignore_eos, stream=not ns.no_stream, seed=ns.seed,
                    policy=policy, drain_s=ns.drain, record_text=ns.record_text,
                    max_in_flight=max(1_024, ns.concurrency or 0))


def run_cli(ns: argparse.Namespace) -> int:
    choices = resolve_choices(ns)
    spec = build_spec(ns, choices)
    slo = SLO(ttft_s=ns.slo_ttft, tpot_s=ns.slo_tpot)
    console = Console()
    with _sinks(ns) as sinks:
        summary = asyncio.run(_run(spec, sinks, tuple(ns.allow_host), slo, console))
    console.print(summary_table(summary))
    for line in choices.lines():
        console.print(line)
    return 0 if summary.failed == 0 else 1


@contextlib.contextmanager
def _sinks(ns: argparse.Namespace) -> Iterator[list[ResultSink]]:
    with contextlib.ExitStack() as stack:
        sinks: list[ResultSink] = []
        if ns.out is not None:
            sinks.append(stack.enter_context(JsonlSink(ns.out)))
        if not ns.no_exporter:
            port = ns.exporter_port if ns.exporter_port is not None else default_exporter_port()
            sinks.append(stack.enter_context(LoadExporter().serve(port)))
        yield sinks


async def _run(spec: LoadSpec, sinks: list[ResultSink], allow: tuple[str, ...], slo: SLO,
               console: Console) -> Summary:
    async with make_client(spec) as client:
        run = LoadRun(client, spec, sinks=sinks, allow_hosts=allow)
        await run.preflight()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, run.stop)
        run.start()
        with Live(progress_line(run, loop.time()), console=console, transient=True) as live:
            started = loop.time()
            while not run.done:
                await asyncio.sleep(REFRESH_S)
                live.update(progress_line(run, started))
        return summarize(await run.wait(), slo=slo)


def progress_line(run: LoadRun, started: float) -> str:
    results = run.results()
    failed = sum(1 for r in results if r.error is not None)
    elapsed = asyncio.get_running_loop().time() - started
    return (f"[bold]load[/] {elapsed:6.1f}s  issued {run.issued}/{run.spec.max_requests}  "
            f"done {len(results)}  in flight {run.in_flight}  failed {failed}")


def _ms(stat: Stat | None) -> list[str]:
    if stat is None:
        return ["-"] * 4
    return [f"{v * 1000:.1f}" for v in (stat.mean, stat.p50, stat.p95, stat.p99)]


def summary_table(summary: Summary) -> Table:
    """The final table: throughput, goodput, errors by type and latency percentiles."""
    table = Table(title="llm-drill load")
    for column in ("metric", "mean", "p50", "p95", "p99"):
        table.add_column(column, justify="right" if column != "metric" else "left")
    for name, stat in (("TTFT ms", summary.ttft), ("ITL ms", summary.itl),
                       ("TPOT ms", summary.tpot), ("E2E ms", summary.e2e),
                       ("schedule lag ms", summary.schedule_lag)):
        table.add_row(name, *_ms(stat))
    counts = (("requests", summary.requests), ("completed", summary.completed),
              ("cancelled", summary.cancelled), ("failed", summary.failed),
              ("retries", summary.retries))
    for name, count in counts:
        table.add_row(name, str(count), "", "", "")
    for kind in ErrorType:
        if summary.errors.get(kind):
            table.add_row(f"errors {kind.value}", str(summary.errors[kind]), "", "", "")
    for name, value in (("requests/s", summary.requests_per_s),
                        ("output tokens/s", summary.output_tokens_per_s),
                        ("goodput req/s", summary.goodput_per_s)):
        table.add_row(name, f"{value:.2f}", "", "", "")
    return table
