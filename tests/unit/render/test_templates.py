"""The one jinja environment: strict, newline-keeping, escaping only when asked."""

from __future__ import annotations

import zipfile
from pathlib import Path

import jinja2
import pytest

from harness.render.templates import environment


def _templates(tmp_path: Path) -> Path:
    (tmp_path / "page.j2").write_text("<p>{{ text }}</p>\n", encoding="utf-8")
    return tmp_path


def test_autoescape_on_escapes_and_off_leaves_text_alone(tmp_path: Path) -> None:
    where = _templates(tmp_path)
    html = environment(where, autoescape=True).get_template("page.j2").render(text="<b>&")
    raw = environment(where, autoescape=False).get_template("page.j2").render(text="<b>&")
    assert (html, raw) == ("<p>&lt;b&gt;&amp;</p>\n", "<p><b>&</p>\n")


def test_an_undefined_name_fails_instead_of_rendering_empty(tmp_path: Path) -> None:
    template = environment(_templates(tmp_path), autoescape=False).get_template("page.j2")
    with pytest.raises(jinja2.UndefinedError):
        template.render()


def test_templates_can_come_from_a_package_resource_that_is_not_a_path(tmp_path: Path) -> None:
    archive = tmp_path / "templates.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/sub/page.j2", "{{ text }}!\n")
    with zipfile.ZipFile(archive) as zf:
        env = environment(zipfile.Path(zf, "pkg/"), autoescape=False)
        assert env.get_template("sub/page.j2").render(text="hi") == "hi!\n"
        with pytest.raises(jinja2.TemplateNotFound):
            env.get_template("missing.j2")
