"""The container engine the container runtime drives, and the images it runs.

Which engine: ``DOCKER_HOST`` when set (the user's engine, local or remote: podman's
Docker-compatible API, ``ssh://`` or ``tcp://`` with TLS), else the project's own
Docker daemon on a socket under the llm-drill home (``llm-drill engine start``). The
project's daemon changes nothing on the host: no ``docker0`` bridge, no iptables rules
(``--bridge=none --iptables=false``): its containers use the host's network on
loopback, as the process runtime's components do.

No registry can be reached, so the one image is built here: a root filesystem holding
only the host's top-level symlinks (``/bin -> usr/bin`` on a merged /usr), imported with
``docker import``; the host's ``/usr``, ``/etc`` (and any real ``/lib``, ``/bin``), the
project and the model cache are bind-mounted read-only, the llm-drill home
read-write. Every argv the process runtime would run runs unchanged inside.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import signal
import subprocess
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import MissingDependency, StackError, Unreachable
from harness.stack.cgroups import remove_from_every_hierarchy
from harness.waits import Probe, Wait

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

BASE_REPOSITORY = "llm-drill/base"
ENGINE_HINT = ("apt-get install -y docker.io iptables, then `llm-drill engine start` "
               "(or set DOCKER_HOST to an engine you run)")
#: The cgroup every container of the project's daemon is made under (dockerd's default,
#: ``/docker``, outlives the daemon in every hierarchy); removed when the daemon stops.
ENGINE_CGROUP = "llm-drill-engine"
START_WITHIN_S = 30.0
STOP_WITHIN_S = 30.0


@dataclass(frozen=True)
class EngineFiles:
    """Where the project's own daemon keeps its state, socket, pid and log."""

    root: Path

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.root / "dockerd.pid"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    @property
    def exec_root(self) -> Path:
        return self.root / "exec"


def engine_files(home: Path) -> EngineFiles:
    return EngineFiles(home / "engine")


def engine_url(home: Path) -> str:
    """``DOCKER_HOST`` when set, else the project's own daemon's socket."""
    return os.environ.get("DOCKER_HOST") or engine_files(home).url


def connect(url: str) -> docker.DockerClient:
    """A client of the engine at ``url`` that answered a ping; Unreachable naming the URL
    and how to start an engine otherwise."""
    import docker
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    path = url.removeprefix("unix://")
    if url.startswith("unix://") and not Path(path).is_socket():
        # checked first: the SDK leaves its socket open when the connect fails
        raise Unreachable(url, "a Docker Engine API answering /_ping",
                          f"no socket at {path}; {ENGINE_HINT}")
    client: docker.DockerClient | None = None
    try:
        client = docker.DockerClient(base_url=url, timeout=60)
        client.ping()
    except (DockerException, RequestException, OSError) as exc:
        if client is not None:
            client.close()
        raise Unreachable(url, "a Docker Engine API answering /_ping",
                          f"{type(exc).__name__}; {ENGINE_HINT}") from exc
    return client


def api_errors() -> tuple[type[Exception], ...]:
    """What the SDK raises when the engine refuses or cannot be reached."""
    from docker.errors import APIError
    from requests.exceptions import RequestException

    return (APIError, RequestException)


def host_pids(container: Container) -> tuple[int, ...]:
    """Every process of a running container, as pids of the engine's host (the engine's
    ``top``); none when it does not run."""
    try:
        listing = container.top(ps_args="-eo pid")
    except api_errors():
        return ()
    return tuple(int(row[0]) for row in listing.get("Processes") or [])


def restart_policy(container: Container | None) -> str:
    """The restart policy the engine holds for ``container`` ("" when none or no
    container): ``no`` (the engine's default), ``unless-stopped``, ``on-failure``..."""
    if container is None:
        return ""
    return str((container.attrs["HostConfig"].get("RestartPolicy") or {}).get("Name", ""))


def death_of(state: Mapping[str, Any] | None) -> str | None:
    """Why a container is down and will not come back by itself (its exit status and
    whether the kernel OOM-killed it); None while it runs or the engine restarts it."""
    if state is None:
        return "its container is gone"
    if state.get("Running") or state.get("Restarting"):
        return None
    oom = " (OOM-killed)" if state.get("OOMKilled") else ""
    return f"its container exited with status {state.get('ExitCode')}{oom}"


# -- the project's own daemon ----------------------------------------------------------------

def daemon_argv(files: EngineFiles, dockerd: str) -> tuple[str, ...]:
    return (dockerd, "--data-root", str(files.data_root), "--exec-root", str(files.exec_root),
            "-H", files.url, "--pidfile", str(files.pidfile),
            "--bridge=none", "--iptables=false", "--ip-masq=false", "--userland-proxy=false",
            "--cgroup-parent", f"/{ENGINE_CGROUP}")


def daemon_pid(files: EngineFiles) -> int | None:
    """The running daemon's pid from its pidfile, or None."""
    try:
        pid = int(files.pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def start_daemon(files: EngineFiles) -> int:
    """Start the project's dockerd (idempotent) and wait until it answers; its pid."""
    running = daemon_pid(files)
    if running is not None:
        return running
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise MissingDependency("dockerd", ENGINE_HINT)
    files.root.mkdir(parents=True, exist_ok=True)
    with files.log.open("ab") as log:
        proc = subprocess.Popen(daemon_argv(files, dockerd), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)

    def answers() -> Probe[None]:
        if proc.poll() is not None:
            raise StackError(f"dockerd exited with status {proc.returncode}; last lines of "
                             f"{files.log}:\n{_tail(files.log)}")
        with contextlib.suppress(Unreachable):
            connect(files.url).close()
            return Probe(done=True)
        return Probe(done=False, seen=f"no answer on {files.socket}")

    Wait(within=START_WITHIN_S, interval=0.2).until(f"dockerd to answer on {files.socket}",
                                                    answers)
    proc.returncode = 0  # detached on purpose: `llm-drill engine stop` ends it
    return proc.pid


def stop_daemon(files: EngineFiles) -> bool:
    """SIGTERM the project's dockerd (it stops its containerd) and wait; False if none ran."""
    pid = daemon_pid(files)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    Wait(within=STOP_WITHIN_S, interval=0.2).until_true(
        f"dockerd (pid {pid}) to exit", lambda: daemon_pid(files) is None or _zombie(pid))
    for point in mounts_under(files.root):  # deepest first
        subprocess.run(["umount", point], check=False, capture_output=True)
    left = mounts_under(files.root)
    if left:
        raise StackError(f"dockerd exited but left mounts under {files.root}: {left}")
    busy = remove_from_every_hierarchy(ENGINE_CGROUP)
    if busy:
        raise StackError(f"dockerd exited but its containers' cgroups are still busy: {busy}")
    return True


def mounts_under(root: Path) -> list[str]:
    """Mount points at or under ``root``, deepest first. dockerd 20.10 leaves its default
    network namespace bind-mounted (``exec/netns/default``) when it exits."""
    prefix = str(root.resolve())
    points = [line.split()[4] for line in
              Path("/proc/self/mountinfo").read_text().splitlines()]
    return sorted((p for p in points if p == prefix or p.startswith(prefix + "/")),
                  key=len, reverse=True)


@contextmanager
def session_engine(home: Path) -> Iterator[str]:
    """The engine a session's container stack uses, by URL: ``DOCKER_HOST``, or the
    project's daemon, started here when it is not running and then stopped here after."""
    if os.environ.get("DOCKER_HOST"):
        yield os.environ["DOCKER_HOST"]
        return
    files = engine_files(home)
    started = daemon_pid(files) is None
    start_daemon(files)
    try:
        yield files.url
    finally:
        if started:
            stop_daemon(files)


def _zombie(pid: int) -> bool:
    """Gone, or dead and waiting for its parent; reaped here when that parent is us."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- the image -------------------------------------------------------------------------------

ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


def host_root_links() -> tuple[tuple[str, str], ...]:
    """The host's top-level symlinks (a merged /usr: ``/bin -> usr/bin``), which the base
    image repeats so the host's binaries find their interpreter and libraries."""
    return tuple((path.lstrip("/"), os.readlink(path)) for path in ROOT_LINKS
                 if os.path.islink(path))


def base_image_tag(links: tuple[tuple[str, str], ...]) -> str:
    digest = hashlib.sha256(repr(links).encode()).hexdigest()[:12]
    return f"{BASE_REPOSITORY}:{digest}"


def ensure_base_image(client: docker.DockerClient) -> str:
    """The base image for this host's layout, imported once per engine; its tag."""
    from docker.errors import ImageNotFound

    links = host_root_links()
    tag = base_image_tag(links)
    try:
        client.images.get(tag)
    except ImageNotFound:
        repository, version = tag.split(":")
        client.api.import_image_from_data(root_tar(links), repository=repository, tag=version)
        client.images.get(tag)  # ImageNotFound here would be the engine's bug
    return tag


def root_tar(links: tuple[tuple[str, str], ...]) -> bytes:
    """A root filesystem of nothing but the host's top-level symlinks."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, target in links:
            entry = tarfile.TarInfo(name)
            entry.type, entry.linkname = tarfile.SYMTYPE, target
            tar.addfile(entry)
    return buffer.getvalue()
