"""The package carries its own data: an installed wheel needs no checkout."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest

import harness
from harness.render.templates import TEMPLATE_DIR
from harness.report.runbooks import CATALOGUE_FILE
from harness.report.runbooks import TEMPLATES_DIR as RUNBOOK_TEMPLATES
from harness.topology import DEFAULT_STACK_FILE, load_topology

CHECKOUT = Path(__file__).resolve().parents[2]


def test_default_stack_file_is_package_data() -> None:
    packaged = resources.files("harness") / "defaults" / "stack.yaml"
    assert packaged.is_file() and Path(str(packaged)) == DEFAULT_STACK_FILE
    assert load_topology().nodes


@pytest.mark.parametrize("name", ["alerts.rules.yml.j2", "alertmanager.yml.j2",
                                  "prometheus.yml.j2", "haproxy.cfg.j2"])
def test_config_templates_are_package_data(name: str) -> None:
    assert (resources.files("harness.render") / "templates" / name).is_file()
    assert TEMPLATE_DIR / name == Path(str(resources.files("harness.render"))) / "templates" / name


def test_runbook_templates_are_package_data() -> None:
    package = Path(str(resources.files("harness.report")))
    assert package / "templates" / "catalogue.yml" == CATALOGUE_FILE and CATALOGUE_FILE.is_file()
    assert (RUNBOOK_TEMPLATES / "runbook.md.j2").is_file()


def test_no_data_is_found_in_the_checkout_outside_the_package() -> None:
    package = Path(harness.__file__).resolve().parent
    for data in (DEFAULT_STACK_FILE, TEMPLATE_DIR, CATALOGUE_FILE):
        assert data.resolve().is_relative_to(package), data


@pytest.mark.skipif("LLM_DRILL_INSTALLED_VENV" not in os.environ,
                    reason="only under scripts/wheel-check.sh")
def test_the_package_under_test_is_the_installed_wheel() -> None:
    where = Path(harness.__file__).resolve()
    assert where.is_relative_to(Path(os.environ["LLM_DRILL_INSTALLED_VENV"]).resolve()), where
    assert not where.is_relative_to(CHECKOUT)
