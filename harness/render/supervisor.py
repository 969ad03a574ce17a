"""The run's supervisord configuration: one program per restartable component.

Programs never start on their own (``autostart=false``): the runtime decides start
order and readiness. What supervisord owns is the restart: ``autorestart`` follows
the stack file's restart policy (``unexpected`` for on-failure, ``false`` for never),
``startretries`` is its limit. supervisord stops a program with a SIGTERM to its whole
process group (``stopasgroup``), or, for a program that coordinates its own children's
shutdown (``stop_leader_only``: a vLLM node), to the group's leader alone, the wrapper
that passes it to the command (as Kubernetes, ``docker stop`` and systemd's
``KillMode=mixed`` do); its SIGKILL past the grace goes to the whole group
(``killasgroup``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.topology import RestartPolicy

START_SECS = 1     # up this long = started (a restart that dies sooner counts as failed)
STOP_WAIT_S = 30   # supervisord's own SIGKILL escalation; the runtime escalates sooner


@dataclass(frozen=True)
class Program:
    """One supervised program: ``command`` already carries its wrapper."""

    name: str
    command: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    log_path: Path
    directory: Path
    restart: RestartPolicy
    priority: int
    #: SIGTERM to the wrapper only (it passes it to the command), not to every process of
    #: the group: vLLM's workers exit at once on a SIGTERM of their own (they take it for
    #: a failed shutdown), and the engine they served stops mid-drain.
    stop_leader_only: bool = False


@dataclass(frozen=True)
class SupervisordFiles:
    """Where supervisord keeps its socket, pid file and own log (all in the run dir)."""

    socket: Path
    pidfile: Path
    logfile: Path

    @property
    def server_url(self) -> str:
        return f"unix://{self.socket}"


def _escape(value: str) -> str:
    """supervisord expands ``%(name)s`` in values: a literal ``%`` is written ``%%``."""
    return value.replace("%", "%%")


def _quote(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"a supervisord value cannot span lines: {value!r}")
    return '"' + _escape(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _command(argv: Sequence[str]) -> str:
    return " ".join(_quote(arg) for arg in argv)


def autorestart(policy: RestartPolicy) -> str:
    return "unexpected" if policy.restarts else "false"


def program_section(program: Program) -> list[str]:
    env = ",".join(f"{key}={_quote(value)}" for key, value in program.environment)
    return [
        f"[program:{program.name}]",
        f"command={_command(program.command)}",
        f"directory={_escape(str(program.directory))}",
        "autostart=false",
        f"autorestart={autorestart(program.restart)}",
        "exitcodes=0",
        f"startretries={program.restart.max_restarts}",
        f"startsecs={START_SECS}",
        "stopsignal=TERM",
        f"stopwaitsecs={STOP_WAIT_S}",
        f"stopasgroup={'false' if program.stop_leader_only else 'true'}",
        "killasgroup=true",
        f"priority={program.priority}",
        "redirect_stderr=true",
        f"stdout_logfile={_escape(str(program.log_path))}",
        "stdout_logfile_maxbytes=0",
        "stdout_logfile_backups=0",
        f"environment={env}",
        "",
    ]


def render_supervisord(files: SupervisordFiles, programs: Iterable[Program]) -> str:
    lines = [
        "; rendered by llm-drill for one run: do not edit",
        "[supervisord]",
        "nodaemon=true",
        "silent=true",  # its log goes to logfile only (stdout is the same file)
        f"logfile={_escape(str(files.logfile))}",
        "logfile_maxbytes=0",
        f"pidfile={_escape(str(files.pidfile))}",
        "loglevel=info",
        "",
        "[unix_http_server]",
        f"file={_escape(str(files.socket))}",
        "chmod=0700",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl={_escape(files.server_url)}",
        "",
    ]
    for program in programs:
        lines += program_section(program)
    return "\n".join(lines)
