"""``llm-drill render --out DIR``: every config into a directory a team can copy."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.render.run_configs import RULES_FILE

EVERY_CONFIG = {"alerts.rules.yml", "prometheus.yml", "alertmanager.yml", "haproxy.cfg",
                "toxiproxy.json", "vllm-logging.json", "docker-compose.yml"}


def test_render_creates_the_directory_and_writes_every_config(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    assert main(["render", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == EVERY_CONFIG


def test_render_into_an_existing_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["render", "--out", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} == EVERY_CONFIG | {"keep.txt"}


def test_render_onto_a_file_is_a_clear_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "docker-compose.yml"
    target.write_text("old")
    assert main(["render", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert str(target) in err and "not a directory" in err and "Traceback" not in err
    assert target.read_text() == "old"


def test_render_refuses_a_new_path_that_looks_like_a_file(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    assert main(["render", "--out", str(tmp_path / "compose.yml")]) == 2
    assert "names a directory" in capsys.readouterr().err
    assert not (tmp_path / "compose.yml").exists()


def test_rendered_prometheus_config_finds_its_rules_beside_it(tmp_path: Path) -> None:
    assert main(["render", "--out", str(tmp_path)]) == 0
    prometheus = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    assert prometheus["rule_files"] == [RULES_FILE]
    rules = yaml.safe_load((tmp_path / RULES_FILE).read_text())
    assert rules["groups"] and all(group["rules"] for group in rules["groups"])
    sd_files = prometheus["scrape_configs"][0]["file_sd_configs"][0]["files"]
    assert all(not Path(f).is_absolute() for f in sd_files)


def test_render_reads_the_given_stack_file(tmp_path: Path) -> None:
    from harness.topology import DEFAULT_STACK_FILE

    stack = tmp_path / "stack.yaml"
    stack.write_text(DEFAULT_STACK_FILE.read_text().replace("port: 18080", "port: 28080", 1))
    assert main(["--stack-file", str(stack), "render", "--out", str(tmp_path / "out")]) == 0
    assert "bind 127.0.0.1:28080" in (tmp_path / "out" / "haproxy.cfg").read_text()
