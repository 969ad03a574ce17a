"""The alert rules, rendered for the default topology, checked and unit-tested by promtool.

Each ``cases/<Alert>.yml`` holds promtool tests that fire the alert and keep it
quiet. promtool compares annotations exactly when an alert fires, so the copy
the cases run against has its annotations removed (expression, ``for:`` and
labels are untouched); ``promtool check rules`` validates the annotation
templates of the real file, and a guard here checks each one is present.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.auth import WEBHOOK_TOKEN_ENV
from harness.render.rules import (
    ALERT_CATALOGUE,
    render_alertmanager,
    render_rules,
    rule_specs,
    write_rules,
)
from harness.render.run_configs import WEBHOOK_TOKEN_FILE, render_run_configs
from harness.runs import Paths
from harness.topology import Topology, load_topology

CASES_DIR = Path(__file__).parent / "cases"
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian: apt-get install prometheus)")


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology()


@pytest.fixture
def rules_file(topology: Topology, tmp_path: Path) -> Path:
    return write_rules(topology, tmp_path / "alerts.rules.full.yml")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def _without_annotations(text: str) -> str:
    doc = yaml.safe_load(text)
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return yaml.safe_dump(doc)


@needs_promtool
def test_promtool_check_rules_accepts_the_rendered_rules(rules_file: Path) -> None:
    result = _run(str(PROMTOOL), "check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rule_specs(rules_file.read_text()))} rules found" in result.stdout


@needs_promtool
@pytest.mark.parametrize("alert", ALERT_CATALOGUE)
def test_promtool_unit_tests_pass(alert: str, topology: Topology, tmp_path: Path) -> None:
    (tmp_path / "alerts.rules.yml").write_text(_without_annotations(render_rules(topology)))
    case = shutil.copy(CASES_DIR / f"{alert}.yml", tmp_path)
    result = _run(str(PROMTOOL), "test", "rules", str(case))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_can_fail(topology: Topology, tmp_path: Path) -> None:
    """With NodeDown's rule removed, its firing case must fail: the cases bite."""
    doc = yaml.safe_load(_without_annotations(render_rules(topology)))
    for group in doc["groups"]:
        group["rules"] = [r for r in group["rules"] if r.get("alert") != "NodeDown"]
    (tmp_path / "alerts.rules.yml").write_text(yaml.safe_dump(doc))
    case = shutil.copy(CASES_DIR / "NodeDown.yml", tmp_path)
    result = _run(str(PROMTOOL), "test", "rules", str(case))
    assert result.returncode != 0
    assert "NodeDown fires" in result.stdout + result.stderr


def test_every_catalogued_alert_has_a_rule_with_runbook_and_severity(topology: Topology) -> None:
    specs = rule_specs(render_rules(topology))
    assert {s.alert for s in specs} == set(ALERT_CATALOGUE)
    for spec in specs:
        assert spec.runbook == f"runbooks/{spec.alert}.md", spec
        assert spec.severity in {"critical", "warning"}, spec


def test_every_rule_has_summary_and_description(topology: Topology) -> None:
    doc = yaml.safe_load(render_rules(topology))
    for group in doc["groups"]:
        for rule in group["rules"]:
            annotations = rule["annotations"]
            assert annotations["summary"].strip(), rule["alert"]
            assert annotations["description"].strip(), rule["alert"]
            assert "for" in rule, rule["alert"]


@pytest.mark.parametrize("alert", ALERT_CATALOGUE)
def test_every_alert_has_a_firing_and_a_quiet_case(alert: str) -> None:
    doc = yaml.safe_load((CASES_DIR / f"{alert}.yml").read_text())
    checks = [c for t in doc["tests"] for c in t["alert_rule_test"] if c["alertname"] == alert]
    assert any(c["exp_alerts"] for c in checks), f"{alert}: no case fires it"
    assert any(not c["exp_alerts"] for c in checks), f"{alert}: no case keeps it quiet"


def test_thresholds_come_from_the_topology() -> None:
    custom = load_topology(overrides={"thresholds.ttft_p95_s": 1.75,
                                      "thresholds.queue_backlog": 13,
                                      "thresholds.for_long_s": 17})
    text = render_rules(custom)
    assert "> 1.75" in text and "> 13" in text and "for: 17s" in text
    assert "> 0.8\n" not in text


@pytest.mark.skipif(AMTOOL is None, reason="amtool not installed (Debian: prometheus-alertmanager)")
def test_amtool_accepts_the_alertmanager_config(topology: Topology, tmp_path: Path) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(render_alertmanager(topology))
    result = _run(str(AMTOOL), "check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_routes_each_severity_to_the_webhook(topology: Topology) -> None:
    doc = yaml.safe_load(render_alertmanager(topology))
    receivers = {r["name"]: r["webhook_configs"][0] for r in doc["receivers"]}
    for severity in ("critical", "warning"):
        hook = receivers[f"harness-{severity}"]
        assert hook["url"] == f"{topology.webhook_url}/alerts/{severity}"
        assert hook["send_resolved"] is True
    route = doc["route"]
    assert route["group_wait"] == f"{topology.alertmanager.group_wait_s}s"
    assert route["repeat_interval"] == f"{topology.alertmanager.repeat_interval_s}s"
    assert {"alertname", "node"} <= set(route["group_by"])


def test_drills_await_delivery_on_the_route_alertmanager_is_given(topology: Topology) -> None:
    """observe.alerts.severity_route (what drills await) agrees with the rendered routes."""
    from harness.observe.alerts import DEFAULT_ROUTE, severity_route
    from harness.render.rules import SEVERITIES

    doc = yaml.safe_load(render_alertmanager(topology))
    urls = {r["name"]: r["webhook_configs"][0]["url"] for r in doc["receivers"]}
    routed = {r["matchers"][0]: r["receiver"] for r in doc["route"]["routes"]}
    for severity in SEVERITIES:
        receiver, path = severity_route(severity)
        assert routed[f'severity="{severity}"'] == receiver
        assert urls[receiver] == f"{topology.webhook_url}{path}"
    receiver, path = severity_route("")
    assert doc["route"]["receiver"] == receiver == f"harness-{DEFAULT_ROUTE}"
    assert urls[receiver] == f"{topology.webhook_url}{path}"


def test_a_run_with_a_webhook_token_sends_it_from_a_private_file(
        topology: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEBHOOK_TOKEN_ENV, "s3cret")
    paths = Paths(tmp_path)
    render_run_configs(topology, paths)
    config = paths.config("alertmanager.yml").read_text()
    assert "s3cret" not in config
    token_file = paths.config(WEBHOOK_TOKEN_FILE)
    assert token_file.read_text() == "s3cret"
    assert token_file.stat().st_mode & 0o077 == 0
    hooks = [h for r in yaml.safe_load(config)["receivers"] for h in r["webhook_configs"]]
    assert hooks and all(h["http_config"]["authorization"] == {
        "type": "Bearer", "credentials_file": str(token_file)} for h in hooks)
    if AMTOOL is not None:
        result = _run(str(AMTOOL), "check-config", str(paths.config("alertmanager.yml")))
        assert result.returncode == 0, result.stdout + result.stderr


def test_without_a_token_no_credentials_are_configured(
        topology: Topology, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WEBHOOK_TOKEN_ENV, raising=False)
    paths = Paths(tmp_path)
    render_run_configs(topology, paths)
    assert "http_config" not in paths.config("alertmanager.yml").read_text()
    assert not paths.config(WEBHOOK_TOKEN_FILE).exists()
