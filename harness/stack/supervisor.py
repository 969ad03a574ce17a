"""The run's supervisor: supervisord (PyPI ``supervisor``) and its XML-RPC API.

supervisord restarts nodes, gateways and the front door that die on their own, per
the stack file's restart policy; the runtime still starts them (in order, waiting for
readiness) and stops them on purpose through ``stopProcess`` (never restarted). Each
program runs under :mod:`harness.stack.groupwrap`, which owns its process group.
The API is reached over a unix socket in the run directory with the stdlib's
``xmlrpc.client`` (a transport that connects to a unix socket, with a timeout).
"""

from __future__ import annotations

import http.client
import socket
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from harness.errors import StackError
from harness.render.supervisor import SupervisordFiles
from harness.runs import Paths, scratch_dir

SUPERVISOR = "supervisord"  # its component name in the run's state file
RUNNING_STATES = frozenset({"STARTING", "RUNNING", "BACKOFF"})
STOPPED_STATES = frozenset({"STOPPED", "EXITED", "FATAL", "UNKNOWN"})


def supervisord_files(paths: Paths, run_id: str) -> SupervisordFiles:
    """The socket sits in the run's short scratch dir: a unix socket path must stay under
    108 bytes, which a run directory deep in a tree (pytest's tmp_path) is not."""
    return SupervisordFiles(socket=scratch_dir(run_id) / "supervisor.sock",
                            pidfile=paths.run_dir / "supervisord.pid",
                            logfile=paths.log(SUPERVISOR))


def supervisord_config(paths: Paths) -> Path:
    return paths.config("supervisord.conf")


def main_pidfile(paths: Paths, name: str) -> Path:
    """Where a program's wrapper writes the pid of its main process."""
    return paths.run_dir / "pids" / f"{name}.pid"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__()
        self._path, self._timeout = str(path), timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        connection = _UnixConnection(self._path, self._timeout)
        self._connection = host, connection  # so that close() closes it
        return connection


@dataclass(frozen=True)
class ProgramInfo:
    """supervisord's view of one program."""

    name: str
    state: str
    pid: int          # the wrapper's pid (the group leader); 0 when not running
    exit_status: int

    @property
    def running(self) -> bool:
        return self.state in ("STARTING", "RUNNING") and self.pid > 0


def gave_up(info: ProgramInfo | None, restarts: bool) -> str | None:
    """Why supervisord will not start the program again by itself: it gave up (FATAL:
    its restarts kept dying), it was stopped through its API, or it exited with
    ``autorestart=false`` (``restarts``
    False: the policy the runtime wrote into its program); None otherwise. EXITED under
    a restart policy is the moment before supervisord restarts it, not the end."""
    if info is None:
        return None
    if info.state == "FATAL":
        return f"supervisord gave up on {info.name} (FATAL: its restarts kept dying)"
    if info.state == "STOPPED":
        return f"supervisord has {info.name} STOPPED as asked (it never restarts such a program)"
    if info.state == "EXITED" and not restarts:
        return (f"supervisord left {info.name} {info.state} (exit status {info.exit_status}; "
                "its program has autorestart=false)")
    return None


@dataclass(frozen=True)
class SupervisorClient:
    """supervisord's XML-RPC API over the run's unix socket."""

    socket_path: Path
    timeout_s: float = 10.0

    def _call(self, method: str, *args: Any) -> Any:
        proxy = xmlrpc.client.ServerProxy(
            "http://localhost", transport=_UnixTransport(self.socket_path, self.timeout_s))
        try:
            with proxy:
                return getattr(proxy, method)(*args)
        except xmlrpc.client.Fault as exc:
            raise StackError(f"supervisord refused {method}{args}: {exc.faultString}") from exc
        except OSError as exc:
            raise StackError(f"supervisord at {self.socket_path} is unreachable "
                             f"({method}): {exc}") from exc

    def reachable(self) -> bool:
        try:
            return str(self._call("supervisor.getState")["statename"]) == "RUNNING"
        except StackError:
            return False

    def info(self, name: str) -> ProgramInfo:
        raw = cast(dict[str, Any], self._call("supervisor.getProcessInfo", name))
        return ProgramInfo(name, str(raw["statename"]), int(raw["pid"]), int(raw["exitstatus"]))

    def start(self, name: str) -> None:
        self._call("supervisor.startProcess", name, False)

    def stop(self, name: str) -> None:
        """Stop without waiting (supervisord signals the group and will not restart it)."""
        try:
            self._call("supervisor.stopProcess", name, False)
        except StackError as exc:
            if "NOT_RUNNING" not in str(exc):
                raise

    def stop_all(self) -> None:
        self._call("supervisor.stopAllProcesses", True)

    def reload(self, name: str) -> bool:
        """Re-read the config file and, if ``name``'s program is new or changed, (re)create
        it (it must be stopped). Other changed programs keep running as they are until
        their own start. True when ``name`` was (re)created."""
        added, changed, _removed = cast(list[list[str]],
                                        self._call("supervisor.reloadConfig")[0])
        if name in changed:
            self._call("supervisor.removeProcessGroup", name)
        if name in added or name in changed:
            self._call("supervisor.addProcessGroup", name)
            return True
        return False
