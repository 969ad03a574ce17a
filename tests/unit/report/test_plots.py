"""Timeline plots: journal dicts back to samples, panels from samples, PNG bytes."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

from harness.drill.journal import PhaseMark
from harness.observe.timeline import NodeSample, TimelineSample
from harness.report.plots import (
    CIRCUIT_LEVELS,
    EMPTY_TIMELINE,
    NOTHING_TO_PLOT,
    backend_levels,
    journal_samples,
    plot_drill,
    render_png,
    sample_from_dict,
    timeline_panels,
)
from tests.unit.report.journals import BACK_AT, KILLED_AT, T0, WORKERS, node_restart, sample

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_a_sample_survives_the_journal_round_trip() -> None:
    original = sample(KILLED_AT + 3)
    raw = json.loads(json.dumps(asdict(original)))  # tuples come back as lists
    assert sample_from_dict(raw) == original


def test_every_panel_is_present_for_a_full_timeline() -> None:
    titles = [p.title for p in timeline_panels(journal_samples(node_restart()), T0)]
    assert titles == [
        "vLLM nodes: requests running (solid) and waiting (dashed)",
        "vLLM nodes: KV-cache usage", "Gateways: worker health",
        "Gateways: circuit breaker state", "Front door: backend state",
        "Client: TTFT (mean since the previous sample)",
        "Client: errors by type since the first sample"]


def test_a_down_node_leaves_a_gap_and_x_is_seconds_since_start() -> None:
    kv = next(p for p in timeline_panels(journal_samples(node_restart()), T0)
              if "KV" in p.title)
    node2 = next(s for s in kv.series if s.label == "node2")
    at = dict(zip(node2.xs, node2.ys, strict=True))
    assert math.isnan(at[KILLED_AT]) and at[BACK_AT] == 20.0  # percent
    assert node2.xs[0] == 0.0


def test_circuit_state_is_categorical() -> None:
    circuit = next(p for p in timeline_panels(journal_samples(node_restart()), T0)
                   if "circuit" in p.title)
    assert circuit.levels == CIRCUIT_LEVELS
    second = next(s for s in circuit.series if s.label == f"gateway-a → {WORKERS[1]}")
    values = dict(zip(second.xs, second.ys, strict=True))
    assert values[0.0] == CIRCUIT_LEVELS.index("closed")
    assert values[KILLED_AT + 2] == CIRCUIT_LEVELS.index("open")


def test_client_errors_count_from_the_first_sample() -> None:
    errors = next(p for p in timeline_panels(journal_samples(node_restart()), T0)
                  if "errors" in p.title)
    by_kind = {s.label: dict(zip(s.xs, s.ys, strict=True)) for s in errors.series}
    assert by_kind["5xx"][40.0] == 0.0  # 2 before the drill, 2 after: none during it
    assert by_kind["stream_cut"][0.0] == 0.0 and by_kind["stream_cut"][KILLED_AT] == 4.0


def test_backend_states_sort_up_on_top_unknown_at_the_bottom() -> None:
    assert backend_levels(["UP", "DOWN", "UP", "no check", "MAINT"]) == (
        "no check", "DOWN", "MAINT", "UP")


def test_panels_without_values_are_left_out() -> None:
    samples = [TimelineSample(at=T0 + i, nodes=(NodeSample("node1", up=False),), workers=(),
                              frontdoor=(), client=None) for i in range(3)]
    assert timeline_panels(samples, T0) == ()
    journal = node_restart(timeline=tuple(asdict(s) for s in samples))
    assert plot_drill(journal).png is None
    assert plot_drill(journal).note == NOTHING_TO_PLOT


def test_an_empty_timeline_is_a_note() -> None:
    drawn = plot_drill(node_restart(timeline=()))
    assert (drawn.png, drawn.note) == (None, EMPTY_TIMELINE)


def test_render_png_draws_panels_and_phases() -> None:
    panels = timeline_panels(journal_samples(node_restart()), T0)
    png = render_png(panels, (PhaseMark("fault applied", T0 + KILLED_AT),), T0)
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000
    assert plot_drill(node_restart()).png is not None
