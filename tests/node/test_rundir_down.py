"""daemon/rundir.py ``down_here``: a cluster is declared down only when this host's run
directory proves it (stopped: every node of the topology recorded at its endpoint, none
alive, no supervisor; never started: no record and every node this host's), never for a
topology whose nodes this folder does not record (an MPI launch's published file, nodes
on other hosts). Real folders, real records, a real process for a node outliving its
supervisor; no cluster."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from daemon import rundir
from daemon.topology import loads

TOPOLOGY = """
[cluster]
name = "lab"
host = "127.0.0.1"
base_port = 29500

[[node]]
name = "root"
cpus = 2

[[node]]
name = "leaf"
cpus = 2
parents = ["root"]
"""


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv(rundir.HOME_ENV, str(home))
    return home


@pytest.fixture
def topology(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text(TOPOLOGY)
    return loads(TOPOLOGY, str(path))


def everything_local(topology):
    return lambda: list(topology.names)


def write_record(topology, state="stopped", nodes=None, **fields):
    folder = rundir.cluster_dir(topology.cluster.name, create=True)
    nodes = nodes if nodes is not None else {n: {"endpoint": topology.endpoint(n), "pid": None} for n in topology.names}
    rundir.write_json_atomic(folder / rundir.CLUSTER_FILE, {
        "cluster": topology.cluster.name, "topology": topology.path, "state": state,
        "supervisor": {"pid": None}, "nodes": nodes, **fields})


def test_never_started_when_no_record_and_every_node_is_here(home, topology):
    rundir.checked_base(create=True)
    down = rundir.down_here(topology, everything_local(topology))
    assert down is not None and down.kind == "never-started"
    assert down.text.startswith("cluster lab was never started on this host")
    assert f"start it with `ctl start {topology.path}`" in down.text


def test_no_record_proves_nothing_about_nodes_on_other_hosts(home, topology):
    asked = []

    def only_root():
        asked.append(True)
        return ["root"]  # leaf runs elsewhere, as in a published MPI topology

    assert rundir.down_here(topology, only_root) is None
    assert asked, "the local nodes were not consulted"


def test_stopped_says_since_when(home, topology):
    at = time.mktime((2026, 12, 7, 10, 11, 12, 0, 0, -1))
    write_record(topology, stopped_at=at)
    down = rundir.down_here(topology, everything_local(topology))
    assert down is not None and down.kind == "stopped"
    assert down.text == (f"cluster lab is stopped (since 2026-12-07 10:11:12); "
                         f"start it with `ctl start {topology.path}`")


def test_a_supervisor_gone_without_a_stop_is_stopped_and_named(home, topology):
    write_record(topology, state="running", supervisor={"pid": 999_999_999 - 1})
    down = rundir.down_here(topology, everything_local(topology))
    assert down is not None and down.kind == "stopped"
    assert "is gone without a stop" in down.text and "`ctl stop -t" in down.text


@pytest.mark.parametrize("layout", ["a node missing", "another port"])
def test_a_record_of_another_layout_proves_nothing(home, topology, layout):
    """Rank 0's record names only its share of a published topology; a record of an
    earlier run on other ports says nothing about these endpoints."""
    nodes = {"root": {"endpoint": topology.endpoint("root"), "pid": None}}
    if layout == "another port":
        nodes["leaf"] = {"endpoint": "tcp://127.0.0.1:1", "pid": None}
    write_record(topology, nodes=nodes, remote_nodes=["leaf"] if layout == "a node missing" else [])
    assert rundir.down_here(topology, everything_local(topology)) is None


@pytest.mark.e2e  # starts a process (tests/conftest.py)
def test_a_node_outliving_its_supervisor_is_not_declared_down(home, topology):
    node = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "--node", "leaf"])
    try:
        started = psutil.Process(node.pid).create_time()
        nodes = {n: {"endpoint": topology.endpoint(n), "pid": None} for n in topology.names}
        nodes["leaf"].update(pid=node.pid, create_time=started)
        write_record(topology, nodes=nodes)
        assert rundir.down_here(topology, everything_local(topology)) is None
    finally:
        node.kill()
        node.wait()
    assert rundir.down_here(topology, everything_local(topology)).kind == "stopped"


def test_a_damaged_record_is_left_to_status_and_stop(home, topology):
    folder = rundir.cluster_dir(topology.cluster.name, create=True)
    (folder / rundir.CLUSTER_FILE).write_text("[1, 2")
    assert rundir.down_here(topology, everything_local(topology)) is None
