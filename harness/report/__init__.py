"""Reporting: drill journals, the HTML report and the generated runbooks."""
