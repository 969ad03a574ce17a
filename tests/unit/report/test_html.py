"""The HTML report: every drill, its verdicts, escaped journal text, embedded plots."""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path

import pytest

from harness.drill.journal import Journal
from harness.errors import ConfigError
from harness.report.html import build_report, measurement, since
from harness.report.plots import EMPTY_TIMELINE, MISSING_MATPLOTLIB, DrillPlot
from tests.unit.report.journals import cancel_storm, node_restart, write_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def report(tmp_path: Path, *journals: Journal) -> str:
    return build_report(write_run(tmp_path, *journals)).read_text()


def test_written_atomically_to_the_run_report_dir(tmp_path: Path) -> None:
    path = build_report(write_run(tmp_path))
    assert path == tmp_path / "report" / "index.html"
    assert [p.name for p in path.parent.iterdir()] == ["index.html"]


def test_out_overrides_the_path(tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "drills.html"
    assert build_report(write_run(tmp_path / "run"), out) == out
    assert "node_restart" in out.read_text()


def test_summary_names_every_drill_outcome_and_counts(tmp_path: Path) -> None:
    page = report(tmp_path)
    summary = page.split("<tbody>")[1].split("</tbody>")[0]
    rows = summary.split("<tr>")[1:]
    assert "node_restart" in rows[1] and "cancel_storm" in rows[0]  # journals sorted by name
    assert ">passed</span>" in rows[1] and ">failed</span>" in rows[0]
    assert "28.25 s" in rows[1]  # recovery
    assert "47.50 s" in rows[1]  # wall time
    assert re.search(r'<td class="num">3</td>\s*<td class="num">0</td>', rows[1])
    assert re.search(r'<td class="num">1</td>\s*<td class="num bad">1</td>', rows[0])
    assert "restart_to_ready_s</code> 20.00 s" in rows[1]


def test_suite_wall_time_spans_first_start_to_last_end(tmp_path: Path) -> None:
    header = report(tmp_path, node_restart(), cancel_storm()).split("<table>")[0]
    assert "suite wall time 130.00 s" in header  # node_restart at T0, cancel_storm ends T0+130


def test_per_drill_verdicts_alerts_load_and_error(tmp_path: Path) -> None:
    page = report(tmp_path)
    assert "4 of 4 ended with an error" in page
    assert "in-flight streams end cleanly" in page
    assert "+23.5 s" in page and "+36.0 s" in page  # NodeDown firing and resolved
    assert "<code>node=node2</code>" in page
    assert "stream_cut: 4" in page and "190.5" in page
    assert "DrillFailed: KV released: node1 kv 0.4 &gt; baseline &amp; rising" in page
    assert "<b>fault applied</b> +10.0 s" in page


def test_journal_text_is_escaped(tmp_path: Path) -> None:
    page = report(tmp_path, cancel_storm())
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_drill_with_a_timeline_embeds_a_png(tmp_path: Path) -> None:
    uris = DATA_URI.findall(report(tmp_path, node_restart()))
    assert len(uris) == 1
    assert base64.b64decode(uris[0]).startswith(PNG_SIGNATURE)


def test_an_empty_timeline_gets_a_note_not_a_plot(tmp_path: Path) -> None:
    page = report(tmp_path, cancel_storm(timeline=()))
    assert DATA_URI.search(page) is None
    assert EMPTY_TIMELINE in page


def test_without_matplotlib_the_report_still_renders(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    page = report(tmp_path, node_restart())
    assert DATA_URI.search(page) is None
    assert "pip install &#39;llm-drill[report]&#39;" in page
    assert MISSING_MATPLOTLIB.startswith("Plots need matplotlib")


def test_plotter_is_injectable(tmp_path: Path) -> None:
    drawn: list[str] = []

    def plot(journal: Journal) -> DrillPlot:
        drawn.append(journal.drill)
        return DrillPlot(PNG_SIGNATURE + b"fake", "drawn by the test")

    page = build_report(write_run(tmp_path), plot=plot).read_text()
    assert drawn == ["cancel_storm", "node_restart"]
    assert page.count("drawn by the test") == 2
    assert base64.b64decode(DATA_URI.findall(page)[0]) == PNG_SIGNATURE + b"fake"


def test_no_journals_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no drill journals"):
        build_report(tmp_path)
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("recovery_s", 28.254, "28.25 s"),
    ("detection_lag_s.NodeDown", 3.5, "3.50 s"),
    ("wave_1_cancelled", 200.0, "200"),
    ("kv_ratio", 0.125, "0.125"),
])
def test_measurements_are_shown_with_units(key: str, value: float, shown: str) -> None:
    assert measurement(key, value) == shown


def test_times_are_relative_to_the_drill_start() -> None:
    assert since(112.34, 100.0) == "+12.3 s"
    assert since(99.5, 100.0) == "-0.5 s"


def test_an_inconclusive_drill_is_shown_and_counted_as_such_never_as_passed(
        tmp_path: Path) -> None:
    unproven = cancel_storm(outcome="inconclusive",
                            error="Inconclusive: KV occupied at the peak: not proven")
    page = report(tmp_path, node_restart(), unproven)
    header = page.split("<table>")[0]
    assert "1 passed" in header and "0 failed" in header and "1 inconclusive" in header
    row = page.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1]
    assert '<span class="badge inconclusive">inconclusive</span>' in row
