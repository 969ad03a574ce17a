"""Render the jinja2 templates in ``harness/render/templates/`` from a Topology.

:func:`environment` is the project's one way to make a jinja environment: the stack's
configs here, the HTML report and the runbooks (``harness.report``) all use it, so
every template fails loudly on an undefined name and keeps its trailing newline.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jinja2

from harness.topology import Topology

TEMPLATE_DIR = Path(str(resources.files("harness.render") / "templates"))


def environment(where: Path | Traversable | jinja2.BaseLoader, *,
                autoescape: bool) -> jinja2.Environment:
    """A jinja environment over templates in ``where``: a directory, a package resource
    (``importlib.resources.files(...)``) or a ready loader.

    ``autoescape`` is a required choice: on for HTML, off for YAML, HAProxy config and
    Markdown, where escaping would corrupt the output.
    """
    return jinja2.Environment(loader=_loader(where), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, autoescape=autoescape)


def _loader(where: Path | Traversable | jinja2.BaseLoader) -> jinja2.BaseLoader:
    if isinstance(where, jinja2.BaseLoader):
        return where
    if isinstance(where, Path):
        return jinja2.FileSystemLoader(str(where))
    return jinja2.FunctionLoader(lambda name: _read_resource(where, name))


def _read_resource(where: Traversable, name: str) -> str | None:
    resource = where.joinpath(*name.split("/"))
    return resource.read_text(encoding="utf-8") if resource.is_file() else None


@cache
def _environment() -> jinja2.Environment:
    return environment(TEMPLATE_DIR, autoescape=False)  # YAML and HAProxy config, not HTML


def render(template: str, topology: Topology, **context: Any) -> str:
    """Render ``template`` with the topology bound to ``t``."""
    return _environment().get_template(template).render(t=topology, **context)
