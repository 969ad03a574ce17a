"""Timeline plots for the HTML report: one PNG per drill, drawn from the journal's timeline.

Panels (each only when the timeline has data for it): requests running / waiting per
node, KV-cache usage per node, each gateway's view of its workers (health, circuit
state), the front door's backend states, client TTFT and client errors. A vertical
line marks every journal phase. The x axis is seconds since the drill started.

matplotlib is the optional ``report`` extra and is imported only when a plot is drawn
(Agg canvas, no pyplot global state): without it, :func:`plot_drill` returns a note.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from harness.drill.journal import Journal, PhaseMark
from harness.observe.timeline import (
    BackendSample,
    ClientSample,
    NodeSample,
    TimelineSample,
    WorkerSample,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MISSING_MATPLOTLIB = "Plots need matplotlib: pip install 'llm-drill[report]'"
EMPTY_TIMELINE = "No timeline samples were recorded for this drill: nothing to plot."
NOTHING_TO_PLOT = "The timeline holds no values to plot (every component was unreachable)."

CIRCUIT_LEVELS = ("closed", "half-open", "open")
HEALTH_LEVELS = ("unhealthy", "healthy")
BACKEND_ORDER = ("DOWN", "MAINT", "DRAIN", "NOLB", "UP")  # bottom to top
NAN = math.nan
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class DrillPlot:
    """A plot as PNG bytes, or the note that says why there is none."""

    png: bytes | None
    note: str = ""


@dataclass(frozen=True)
class Series:
    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]  # NaN where the value is unknown (a gap in the line)
    key: str  # series sharing a key share a colour (a node, a worker, an error type)
    dashed: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    ylabel: str
    series: tuple[Series, ...]
    levels: tuple[str, ...] = ()  # categorical panels: ys index into these labels


# -- journal timeline -> samples ---------------------------------------------------------
def sample_from_dict(raw: Mapping[str, Any]) -> TimelineSample:
    """Rebuild a :class:`TimelineSample` from its ``asdict`` form read back from JSON."""
    client = raw.get("client")
    return TimelineSample(
        at=float(raw["at"]),
        nodes=tuple(NodeSample(**n) for n in raw.get("nodes", ())),
        workers=tuple(WorkerSample(**w) for w in raw.get("workers", ())),
        frontdoor=tuple(BackendSample(**b) for b in raw.get("frontdoor", ())),
        client=_client_from_dict(client) if client else None,
        unreachable=tuple(raw.get("unreachable", ())))


def _client_from_dict(raw: Mapping[str, Any]) -> ClientSample:
    errors = tuple((str(kind), float(value)) for kind, value in raw.get("errors", ()))
    return ClientSample(requests=raw["requests"], errors=errors, ttft_count=raw["ttft_count"],
                        ttft_sum=raw["ttft_sum"], ttft_mean_s=raw.get("ttft_mean_s"))


def journal_samples(journal: Journal) -> tuple[TimelineSample, ...]:
    return tuple(sorted((sample_from_dict(raw) for raw in journal.timeline), key=lambda s: s.at))


# -- samples -> panels -------------------------------------------------------------------
def _nan(value: float | None) -> float:
    return NAN if value is None else float(value)


Probe = Callable[[TimelineSample], float | None]


def _series(samples: Sequence[TimelineSample], origin: float, label: str, key: str,
            value: Probe, *, dashed: bool = False) -> Series:
    return Series(label, tuple(s.at - origin for s in samples),
                  tuple(_nan(value(s)) for s in samples), key, dashed)


def _names(groups: Iterable[Iterable[K]]) -> tuple[K, ...]:
    """Distinct items in the order first seen."""
    return tuple(dict.fromkeys(name for group in groups for name in group))


def _node(sample: TimelineSample, name: str) -> NodeSample | None:
    return next((n for n in sample.nodes if n.node == name), None)


def _node_value(name: str, attr: str, scale: float = 1.0) -> Probe:
    def value(sample: TimelineSample) -> float | None:
        node = _node(sample, name)
        raw = getattr(node, attr) if node is not None else None
        return None if raw is None else raw * scale

    return value


def node_panels(samples: Sequence[TimelineSample], origin: float) -> tuple[Panel, ...]:
    nodes = _names((n.node for n in s.nodes) for s in samples)
    queue = tuple(series for node in nodes for series in (
        _series(samples, origin, f"{node} running", node, _node_value(node, "running")),
        _series(samples, origin, f"{node} waiting", node, _node_value(node, "waiting"),
                dashed=True)))
    kv = tuple(_series(samples, origin, node, node, _node_value(node, "kv_usage", 100.0))
               for node in nodes)
    return (Panel("vLLM nodes: requests running (solid) and waiting (dashed)", "requests",
                  queue),
            Panel("vLLM nodes: KV-cache usage", "KV usage %", kv))


def _worker(sample: TimelineSample, key: tuple[str, str]) -> WorkerSample | None:
    return next((w for w in sample.workers if (w.gateway, w.worker) == key), None)


def _health(key: tuple[str, str]) -> Probe:
    def value(sample: TimelineSample) -> float | None:
        worker = _worker(sample, key)
        return None if worker is None or worker.healthy is None else float(worker.healthy)

    return value


def _level(levels: Sequence[str], state: str | None) -> float | None:
    return None if state is None or state not in levels else float(levels.index(state))


def _circuit(key: tuple[str, str]) -> Probe:
    def value(sample: TimelineSample) -> float | None:
        worker = _worker(sample, key)
        return _level(CIRCUIT_LEVELS, worker.circuit if worker else None)

    return value


def gateway_panels(samples: Sequence[TimelineSample], origin: float) -> tuple[Panel, ...]:
    keys = _names(((w.gateway, w.worker) for w in s.workers) for s in samples)
    labels = {key: f"{key[0]} → {key[1]}" for key in keys}
    health = tuple(_series(samples, origin, labels[k], labels[k], _health(k)) for k in keys)
    circuit = tuple(_series(samples, origin, labels[k], labels[k], _circuit(k)) for k in keys)
    return (Panel("Gateways: worker health", "health", health, HEALTH_LEVELS),
            Panel("Gateways: circuit breaker state", "circuit", circuit, CIRCUIT_LEVELS))


def backend_levels(states: Iterable[str]) -> tuple[str, ...]:
    """Known HAProxy states in a fixed bottom-to-top order, unknown ones below them."""
    seen = set(states)
    return (*sorted(seen - set(BACKEND_ORDER)), *(s for s in BACKEND_ORDER if s in seen))


def _backend(server: str, levels: Sequence[str]) -> Probe:
    def value(sample: TimelineSample) -> float | None:
        state = next((b.state for b in sample.frontdoor if b.server == server), None)
        return _level(levels, state)

    return value


def frontdoor_panels(samples: Sequence[TimelineSample], origin: float) -> tuple[Panel, ...]:
    servers = _names((b.server for b in s.frontdoor) for s in samples)
    levels = backend_levels(b.state for s in samples for b in s.frontdoor)
    series = tuple(_series(samples, origin, server, server, _backend(server, levels))
                   for server in servers)
    return (Panel("Front door: backend state", "state", series, levels),)


def _ttft(sample: TimelineSample) -> float | None:
    return sample.client.ttft_mean_s if sample.client else None


def _errors(kind: str, base: float) -> Probe:
    def value(sample: TimelineSample) -> float | None:
        if sample.client is None:
            return None
        return dict(sample.client.errors).get(kind, base) - base

    return value


def client_panels(samples: Sequence[TimelineSample], origin: float) -> tuple[Panel, ...]:
    clients = [s.client for s in samples if s.client is not None]
    kinds = _names((kind for kind, _ in c.errors) for c in clients)
    first = {kind: next(dict(c.errors)[kind] for c in clients if kind in dict(c.errors))
             for kind in kinds}
    ttft = _series(samples, origin, "mean TTFT", "ttft", _ttft)
    errors = tuple(_series(samples, origin, kind, kind, _errors(kind, first[kind]))
                   for kind in kinds)
    return (Panel("Client: TTFT (mean since the previous sample)", "seconds", (ttft,)),
            Panel("Client: errors by type since the first sample", "errors", errors))


def _has_values(panel: Panel) -> bool:
    return any(not math.isnan(y) for s in panel.series for y in s.ys)


def timeline_panels(samples: Sequence[TimelineSample], origin: float) -> tuple[Panel, ...]:
    """Every panel the samples have data for, in display order."""
    panels = (*node_panels(samples, origin), *gateway_panels(samples, origin),
              *frontdoor_panels(samples, origin), *client_panels(samples, origin))
    return tuple(p for p in panels if _has_values(p))


# -- drawing -----------------------------------------------------------------------------
def canvas() -> tuple[type[Figure], Callable[[Figure], Any]] | None:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return Figure, FigureCanvasAgg


def matplotlib_available() -> bool:
    return canvas() is not None


def _colours(panel: Panel) -> dict[str, str]:
    """Per panel, so no two series of a panel share a colour (panels list nodes alike)."""
    keys = _names([[s.key for s in panel.series]])
    return {key: f"C{i % 10}" for i, key in enumerate(keys)}


def _draw_panel(ax: Axes, panel: Panel) -> None:
    count, colours = len(panel.series), _colours(panel)
    for i, series in enumerate(panel.series):
        # Categorical lines would hide each other: nudge each one a little.
        nudge = (i - (count - 1) / 2) * 0.06 if panel.levels else 0.0
        ax.step(series.xs, [y + nudge for y in series.ys], where="post", label=series.label,
                color=colours[series.key], linestyle="--" if series.dashed else "-",
                linewidth=1.4)
    ax.set_title(panel.title, loc="left", fontsize=10)
    ax.set_ylabel(panel.ylabel, fontsize=9)
    ax.grid(True, alpha=0.3)
    if panel.levels:
        ax.set_yticks(range(len(panel.levels)), panel.levels)
        ax.set_ylim(-0.5, len(panel.levels) - 0.5)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _mark_phases(header: Axes, axes: Sequence[Axes], phases: Sequence[PhaseMark],
                 origin: float) -> None:
    for mark in phases:
        x = mark.at - origin
        for ax in axes:
            ax.axvline(x, color="0.35", linestyle=":", linewidth=1.0)
        header.text(x, 0.0, f" {mark.name}", rotation=35, fontsize=8, ha="left", va="bottom",
                    rotation_mode="anchor")


def _x_range(panels: Sequence[Panel], phases: Sequence[PhaseMark],
             origin: float) -> tuple[float, float]:
    xs = [x for p in panels for s in p.series for x in s.xs]
    xs += [m.at - origin for m in phases]
    low, high = min(xs), max(xs)
    pad = max((high - low) * 0.01, 0.5)
    return low - pad, high + pad


def render_png(panels: Sequence[Panel], phases: Sequence[PhaseMark], origin: float) -> bytes:
    """Draw the panels stacked on one time axis; needs matplotlib."""
    drawing = canvas()
    if drawing is None:
        raise ImportError(MISSING_MATPLOTLIB)
    figure_type, agg = drawing
    fig = figure_type(figsize=(12, 0.8 + 2.2 * len(panels)), dpi=90, layout="constrained")
    agg(fig)
    header, *axes = fig.subplots(len(panels) + 1, 1, sharex=True,
                                 height_ratios=[0.35] + [2.0] * len(panels))
    header.axis("off")
    for ax, panel in zip(axes, panels, strict=True):
        _draw_panel(ax, panel)
    _mark_phases(header, axes, phases, origin)
    axes[-1].set_xlim(*_x_range(panels, phases, origin))
    axes[-1].set_xlabel("seconds since the drill started")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def plot_drill(journal: Journal) -> DrillPlot:
    """The drill's timeline as a PNG, or a note when there is nothing (or nothing to draw with)."""
    samples = journal_samples(journal)
    if not samples:
        return DrillPlot(None, EMPTY_TIMELINE)
    panels = timeline_panels(samples, journal.started_at)
    if not panels:
        return DrillPlot(None, NOTHING_TO_PLOT)
    if not matplotlib_available():
        return DrillPlot(None, MISSING_MATPLOTLIB)
    return DrillPlot(render_png(panels, journal.phases, journal.started_at))
