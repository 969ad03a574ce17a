"""The engine module's pure parts: the project's daemon touches nothing on the host, the
base image repeats the host's root symlinks, and a missing socket is a clear error."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from harness.errors import Unreachable
from harness.stack.cgroups import remove_from_every_hierarchy
from harness.stack.engine import (
    ENGINE_CGROUP,
    base_image_tag,
    daemon_argv,
    engine_files,
    mounts_under,
    root_tar,
)


def test_the_projects_daemon_leaves_the_hosts_network_alone(tmp_path: Path) -> None:
    files = engine_files(tmp_path)
    argv = daemon_argv(files, "/usr/sbin/dockerd")
    assert {"--bridge=none", "--iptables=false", "--ip-masq=false"} <= set(argv)
    assert argv[argv.index("-H") + 1] == f"unix://{tmp_path}/engine/docker.sock"
    assert argv[argv.index("--data-root") + 1] == str(tmp_path / "engine" / "data")


def test_the_projects_containers_are_made_under_a_cgroup_of_its_own(tmp_path: Path) -> None:
    argv = daemon_argv(engine_files(tmp_path), "/usr/sbin/dockerd")
    assert argv[argv.index("--cgroup-parent") + 1] == f"/{ENGINE_CGROUP}"


def test_that_cgroup_goes_from_every_hierarchy_and_nothing_else_does(tmp_path: Path) -> None:
    for hierarchy in ("memory", "cpu", "pids"):
        (tmp_path / hierarchy / ENGINE_CGROUP / "0123abcd").mkdir(parents=True)
        (tmp_path / hierarchy / "docker").mkdir()

    assert remove_from_every_hierarchy(ENGINE_CGROUP, tmp_path) == []

    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("*/*")) == [
        "cpu/docker", "memory/docker", "pids/docker"]


def test_a_busy_cgroup_is_named(tmp_path: Path) -> None:
    leaf = tmp_path / "memory" / ENGINE_CGROUP / "0123abcd"
    leaf.mkdir(parents=True)
    (leaf / "cgroup.procs").write_text("4242\n")  # a plain directory with a file stays

    assert remove_from_every_hierarchy(ENGINE_CGROUP, tmp_path) == [
        tmp_path / "memory" / ENGINE_CGROUP]


def test_the_base_image_holds_only_the_root_symlinks() -> None:
    links = (("bin", "usr/bin"), ("lib64", "usr/lib64"))
    with tarfile.open(fileobj=io.BytesIO(root_tar(links))) as tar:
        members = [(m.name, m.issym(), m.linkname) for m in tar.getmembers()]
    assert members == [("bin", True, "usr/bin"), ("lib64", True, "usr/lib64")]


def test_the_base_image_tag_follows_the_layout() -> None:
    one, other = (("bin", "usr/bin"),), (("bin", "usr/local/bin"),)
    assert base_image_tag(one) == base_image_tag(one)
    assert base_image_tag(one) != base_image_tag(other)
    assert base_image_tag(()).startswith("llm-drill/base:")


def test_nothing_is_mounted_under_a_fresh_folder(tmp_path: Path) -> None:
    assert mounts_under(tmp_path) == []
    assert "/" in mounts_under(Path("/"))


def test_a_missing_socket_names_the_url_and_how_to_start_an_engine(tmp_path: Path) -> None:
    from harness.stack.engine import connect

    with pytest.raises(Unreachable) as caught:
        connect(f"unix://{tmp_path}/docker.sock")
    assert f"{tmp_path}/docker.sock" in str(caught.value)
    assert "llm-drill engine start" in str(caught.value)
