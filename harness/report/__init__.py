"""Reporting: drill journals, the HTML report and the generated runbooks."""

from harness.report.evidence import evidence_from_journals, write_runbooks
from harness.report.html import build_report
from harness.report.plots import DrillPlot, plot_drill
from harness.report.runbooks import DrillEvidence, render_runbooks

__all__ = [
    "DrillEvidence",
    "DrillPlot",
    "build_report",
    "evidence_from_journals",
    "plot_drill",
    "render_runbooks",
    "write_runbooks",
]
