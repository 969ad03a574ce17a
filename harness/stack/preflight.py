"""Checks before anything starts: binaries installed, ports free."""

from __future__ import annotations

import errno
import importlib.util
import shutil
import socket
import sys
from collections.abc import Iterable
from pathlib import Path

import psutil

from harness.errors import MissingDependency, PortInUse

_EXTRA_DIRS = ("/usr/sbin", "/sbin")


def find_binary(names: Iterable[str], install: str) -> str:
    """Locate a binary in the venv, on PATH or in sbin dirs, or say how to install it."""
    venv_bin = str(Path(sys.executable).parent)
    names = tuple(names)
    for name in names:
        for path in (venv_bin, None, *_EXTRA_DIRS):
            found = shutil.which(name, path=path)
            if found:
                return found
    raise MissingDependency(" or ".join(names), install)


def require_module(module: str, install: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise MissingDependency(f"python module {module}", install)


def check_ports_free(host: str, ports: Iterable[tuple[str, int]]) -> None:
    for component, port in ports:
        if not port_is_free(host, port):
            raise PortInUse(port, component, port_holder(port))


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def port_holder(port: int) -> str:
    """Describe the process listening on ``port``, if it can be found."""
    try:
        conns = psutil.net_connections(kind="inet")
    except psutil.Error:
        return ""
    for conn in conns:
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            return _describe_pid(conn.pid)
    return ""


def _describe_pid(pid: int | None) -> str:
    if pid is None:
        return ""
    try:
        proc = psutil.Process(pid)
        return f"pid {pid} ({' '.join(proc.cmdline())[:120]})"
    except psutil.Error:
        return f"pid {pid}"
