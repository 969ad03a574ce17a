"""The supervisor breakage reads back what supervisord was given: the rendered program's
``autorestart`` for each restart policy."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

from harness.render.supervisor import Program, SupervisordFiles, render_supervisord
from harness.runs import Paths
from harness.stack.stack import Stack
from harness.stack.supervisor import supervisord_config
from harness.topology import RestartPolicy
from tests.breakage.breaks import supervisord_autorestart


def _program(tmp: Path, name: str, policy: RestartPolicy) -> Program:
    return Program(name, ("python", "-c", "pass"), (("A", "100%"),), tmp / f"{name}.log", tmp,
                   policy, 1)


def test_the_rendered_policy_reads_back_per_program(tmp_path: Path) -> None:
    config = supervisord_config(Paths(tmp_path))
    config.parent.mkdir(parents=True)
    files = SupervisordFiles(tmp_path / "s.sock", tmp_path / "s.pid", tmp_path / "s.log")
    config.write_text(render_supervisord(files, [
        _program(tmp_path, "node1", RestartPolicy(policy="never")),
        _program(tmp_path, "node2", RestartPolicy())]))
    stack = cast(Stack, SimpleNamespace(run_dir=tmp_path))
    assert supervisord_autorestart(stack, "node1") == "false"
    assert supervisord_autorestart(stack, "node2") == "unexpected"
