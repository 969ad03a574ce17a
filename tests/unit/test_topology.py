"""Stack files: malformed input names the file, line and field; nothing is started."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.topology import DEFAULT_STACK_FILE, Topology, load_topology


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    return path


def _default_with(old: str, new: str, tmp_path: Path) -> Path:
    text = DEFAULT_STACK_FILE.read_text()
    assert old in text
    return _write(tmp_path, text.replace(old, new, 1))


def test_default_stack_file_loads() -> None:
    topology = load_topology()
    assert isinstance(topology, Topology)
    assert [n.name for n in topology.nodes] == ["node1", "node2"]
    assert len(topology.gateways) == 2


def test_wrong_type_names_file_line_and_field(tmp_path: Path) -> None:
    path = _default_with("port: 18080", "port: eighty", tmp_path)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if "eighty" in text)
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    assert info.value.path == str(path)
    assert info.value.line == line
    assert info.value.field == "front_door.port"
    assert "expected an integer" in str(info.value)


def test_unknown_field_lists_known_ones(tmp_path: Path) -> None:
    path = _default_with("stats_port: 18081", "stats_port: 18081\n  colour: blue", tmp_path)
    with pytest.raises(ConfigError, match=r"front_door\.colour.*unknown field"):
        load_topology(path)


def test_missing_required_field(tmp_path: Path) -> None:
    path = _default_with("  - {name: node2, port: 18002, proxy_port: 18102}\n",
                         "  - {name: node2, port: 18002}\n", tmp_path)
    with pytest.raises(ConfigError, match=r"nodes\[1\]\.proxy_port.*required"):
        load_topology(path)


def test_port_clash_is_a_config_error(tmp_path: Path) -> None:
    path = _default_with("port: 18094", "port: 18090", tmp_path)
    with pytest.raises(ConfigError, match=r"ports used twice: \[18090\]"):
        load_topology(path)


def test_block_size_must_suit_cpu_attention(tmp_path: Path) -> None:
    path = _default_with("block_size: 32", "block_size: 16", tmp_path)
    with pytest.raises(ConfigError, match="multiple of 32"):
        load_topology(path)


def test_not_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "model:\n  served_name: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    assert info.value.line is not None and "not valid YAML" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_topology(tmp_path / "nope.yaml")


def test_overrides_are_typed(tmp_path: Path) -> None:
    topology = load_topology(overrides={"thresholds.ttft_p95_s": 1.5})
    assert topology.thresholds.ttft_p95_s == 1.5
    with pytest.raises(ConfigError, match=r"thresholds\.nope"):
        load_topology(overrides={"thresholds.nope": 1})
    with pytest.raises(ConfigError, match="expected a number"):
        load_topology(overrides={"thresholds.ttft_p95_s": "fast"})


# -- the node network ---------------------------------------------------------------------------
def test_nodes_listen_on_the_host_until_a_runtime_places_them() -> None:
    topology = load_topology()
    assert topology.node_network is not None
    assert topology.node_url("node1") == f"http://{topology.host}:18001"
    assert [p[2] for p in topology.proxies()][:2] == [f"{topology.host}:18001",
                                                       f"{topology.host}:18002"]


def test_on_the_node_network_each_node_gets_its_address_in_order() -> None:
    placed = load_topology().on_node_network()
    assert [placed.node_host(n) for n in placed.all_nodes()] == [
        "172.31.250.10", "172.31.250.11", "172.31.250.12"]
    assert placed.node_url("node2", "/metrics") == "http://172.31.250.11:18002/metrics"
    assert placed.proxies()[0] == ("node1", 18101, "172.31.250.10:18001")
    assert placed.front_door_url == load_topology().front_door_url  # the rest stays
    assert placed.on_node_network() == placed  # placing twice changes nothing


def test_only_a_node_at_its_own_address_vanishes_with_it() -> None:
    topology = load_topology()
    assert not topology.node_address_vanishes("node1")  # the host's loopback refuses
    assert topology.on_node_network().node_address_vanishes("node1")


def test_without_a_node_network_nodes_stay_on_the_host(tmp_path: Path) -> None:
    text = DEFAULT_STACK_FILE.read_text()
    start = text.index("node_network:")
    end = text.index("\n\n", start)
    topology = load_topology(_write(tmp_path, text[:start] + text[end:]))
    assert topology.node_network is None
    assert topology.on_node_network() is topology


@pytest.mark.parametrize(("subnet", "says"), [
    ("172.31.250.0/30", "too small"),
    ("8.8.8.0/24", "private"),
    ("not-a-net", "IPv4 network"),
])
def test_a_bad_node_subnet_names_file_line_and_field(tmp_path: Path, subnet: str,
                                                     says: str) -> None:
    path = _default_with("subnet: 172.31.250.0/24", f"subnet: {subnet}", tmp_path)
    with pytest.raises(ConfigError, match=says) as info:
        load_topology(path)
    assert info.value.path == str(path)
    assert info.value.field.startswith("node_network")
    assert info.value.line is not None
