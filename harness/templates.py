"""Render the jinja2 templates under ``compose/templates`` from a Topology."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from harness.topology import COMPOSE_DIR, Topology

TEMPLATE_DIR = COMPOSE_DIR / "templates"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML and HAProxy config, not HTML
    )


def render(template: str, topology: Topology, **context: Any) -> str:
    """Render ``template`` with the topology bound to ``t``."""
    return _environment().get_template(template).render(t=topology, **context)
