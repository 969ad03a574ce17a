"""Memory cgroups (v1) for vLLM nodes, so a memory cap and a real OOM kill are possible.

Layout: ``/sys/fs/cgroup/memory/llm-drill/<run_id>/<node>/``. Only root can write
there; where it cannot, nodes run without a cgroup and memory faults say so.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError, StackError
from harness.waits import Probe, Wait
from harness.webhook.oom import read_oom_kills

MEMORY_ROOT = Path("/sys/fs/cgroup/memory")
UNLIMITED = 2**62  # v1 reads "no limit" as PAGE_COUNTER_MAX pages (about 2**63 bytes)


@dataclass(frozen=True)
class MemoryCgroups:
    run_id: str
    base: Path = MEMORY_ROOT / "llm-drill"

    @property
    def root(self) -> Path:
        return self.base / self.run_id

    def available(self) -> bool:
        parent = self.base.parent
        return parent.is_dir() and os.access(parent, os.W_OK) and (parent / "cgroup.procs").exists()

    def create(self, component: str) -> Path:
        path = self.root / component
        path.mkdir(parents=True, exist_ok=True)
        return path

    def path(self, component: str) -> Path:
        return self.root / component

    def kernel_name(self, component: str) -> str:
        """The cgroup as the kernel log names it (``oom_memcg=``): the path below the
        memory hierarchy's mount, which is ``base``'s parent."""
        return "/" + str(self.path(component).relative_to(self.base.parent))

    def oom_kills(self, component: str) -> int:
        """The kernel's OOM-kill count for the component's cgroup (raises if unreadable)."""
        kills = read_oom_kills(self.path(component) / "memory.oom_control")
        if kills is None:
            raise StackError(f"cannot read oom_kill from {self.path(component)}/memory.oom_control")
        return kills

    def set_limit(self, component: str, limit_bytes: int) -> None:
        target = self.path(component) / "memory.limit_in_bytes"
        try:
            target.write_text(str(limit_bytes))
        except OSError as exc:
            raise StackError(f"cannot set {target} to {limit_bytes}: {exc.strerror}"
                             " (a limit below current usage fails with EBUSY)") from exc

    def limit(self, component: str) -> int | None:
        """The cap in bytes, or None when the cgroup is uncapped."""
        value = int((self.path(component) / "memory.limit_in_bytes").read_text())
        return None if value < 0 or value >= UNLIMITED else value

    def clear_limit(self, component: str) -> None:
        (self.path(component) / "memory.limit_in_bytes").write_text("-1")

    def usage(self, component: str) -> int:
        return int((self.path(component) / "memory.usage_in_bytes").read_text())

    def remove(self, within: float = 5.0) -> None:
        """Remove every cgroup of this run (their processes must be gone first)."""
        if not self.root.exists():
            return
        Wait(within=within, interval=0.1).until(f"cgroups under {self.root} to be removed",
                                                self._try_remove)

    def _try_remove(self) -> Probe[None]:
        _rmdir_tree(self.root)
        if not any(p.is_dir() for p in self.base.iterdir()):  # no other run left
            _rmdir_quiet(self.base)
        return Probe(done=not self.root.exists(), seen=f"{self.root} still busy")


def orphan_run_ids(base: Path = MEMORY_ROOT / "llm-drill", *, older_than_s: float = 120.0,
                   now: float | None = None) -> list[str]:
    """Runs whose cgroups outlived them: no process in any, made over ``older_than_s``
    ago (a run being brought up has empty cgroups for a moment). A run whose state file
    went with its home (a deleted checkout, a CI clone) is found only this way."""
    if not base.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - older_than_s
    return sorted(run.name for run in base.iterdir()
                  if run.is_dir() and run.stat().st_mtime < cutoff and not _holds_processes(run))


def reap_orphan_cgroups(base: Path = MEMORY_ROOT / "llm-drill") -> list[str]:
    """Remove the cgroups of every orphan run (:func:`orphan_run_ids`); returns their ids."""
    orphans = orphan_run_ids(base)
    for run_id in orphans:
        with contextlib.suppress(HarnessError):  # busy after all: the next start tries again
            MemoryCgroups(run_id, base=base).remove(within=2.0)
    return orphans


def _holds_processes(run: Path) -> bool:
    groups = [run, *(p for p in run.iterdir() if p.is_dir())]
    return any(_procs(g / "cgroup.procs") for g in groups)


def _procs(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def other_hierarchies(run_id: str, cgroup_fs: Path = MEMORY_ROOT.parent) -> list[Path]:
    """The run's directories in the v1 hierarchies other than memory: a container engine
    given ``cgroup_parent=/llm-drill/<run>/<node>`` makes that path in every controller
    and removes only the container's own leaf."""
    if not cgroup_fs.is_dir():
        return []
    return [h / "llm-drill" / run_id for h in sorted(cgroup_fs.iterdir())
            if h.name != MEMORY_ROOT.name and (h / "llm-drill" / run_id).is_dir()]


def remove_other_hierarchies(run_id: str, cgroup_fs: Path = MEMORY_ROOT.parent) -> None:
    """Remove the run's (empty) directories from every other controller's hierarchy."""
    for run in other_hierarchies(run_id, cgroup_fs):
        _rmdir_tree(run)
        with contextlib.suppress(OSError):
            if not any(p.is_dir() for p in run.parent.iterdir()):
                run.parent.rmdir()


def remove_from_every_hierarchy(name: str, cgroup_fs: Path = MEMORY_ROOT.parent) -> list[Path]:
    """rmdir ``name`` (a top-level cgroup, with everything under it) from every v1
    hierarchy; returns the directories still there (busy)."""
    if not cgroup_fs.is_dir():
        return []
    trees = [h / name for h in sorted(cgroup_fs.iterdir())]
    for tree in trees:
        _rmdir_tree(tree)
    return [tree for tree in trees if tree.is_dir()]


def _rmdir_tree(root: Path) -> None:
    """rmdir every directory under ``root``, deepest first (cgroup dirs only ever hold
    control files, which rmdir takes with them)."""
    if not root.is_dir():
        return
    for here, _, _ in sorted(os.walk(root), key=lambda w: -len(Path(w[0]).parts)):
        _rmdir_quiet(Path(here))


def _rmdir_quiet(path: Path) -> None:
    with contextlib.suppress(OSError):  # busy or gone: the caller's wait polls again
        path.rmdir()
