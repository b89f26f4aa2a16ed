"""The most-loaded election on a real cluster: node daemons on loopback ZeroMQ sockets,
started and stopped with ``ctl``, which load the kind through its entry point.

Every process the test starts is stopped: ``ctl stop`` stops the cluster by pid and
checks that none is left; the teardown checks again from the run directory's record."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.e2e

TOPOLOGY = """
[cluster]
name = "mostloaded-{tag}"
task_time = 30.0
rebalance_interval = 0
host = "127.0.0.1"
base_port = {port}

[[node]]
name = "north"
cpus = 2
parents = []

[[node]]
name = "middle"
cpus = 2
parents = ["north"]

[[node]]
name = "south"
cpus = 4
parents = ["middle"]

[[node]]
name = "east"
cpus = 1
parents = ["north"]
"""


def free_base(count: int) -> int:
    """A base port whose ``count`` inbox ports and as many operator ports (base + 1000)
    are free on loopback now."""
    for _ in range(200):
        base = random.randrange(20000, 40000)
        try:
            for port in [base + k for k in range(count)] + [base + 1000 + k for k in range(count)]:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free loopback ports found")


def ctl(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ctl", *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def cluster(tmp_path: Path):
    env = dict(os.environ, ECHOFINN_HOME=str(tmp_path / "home"))
    env.pop("ECHOFINN_CLUSTER", None)
    topology = tmp_path / "mostloaded.toml"
    topology.write_text(TOPOLOGY.format(tag=tmp_path.name[-8:].replace("_", ""), port=free_base(4)))
    started = ctl(env, "start", str(topology))
    assert started.returncode == 0, started.stderr
    try:
        yield env, topology
    finally:
        record = next((tmp_path / "home").glob("*/cluster.json"), None)
        pids = []
        if record is not None:
            doc = json.loads(record.read_text())
            pids = [n["pid"] for n in doc.get("nodes", {}).values() if n.get("pid")]
            pids.append(doc.get("supervisor", {}).get("pid"))
        stopped = ctl(env, "stop", "-t", str(topology))
        for pid in filter(None, pids):  # ctl stop checked by pid; so does the test
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                psutil.Process(pid).kill()
                pytest.fail(f"process {pid} outlived ctl stop")
        assert stopped.returncode == 0, stopped.stderr


def test_the_cluster_elects_the_node_with_the_most_work_per_cpu(cluster):
    env, topology = cluster
    listed = ctl(env, "wave", "--list")
    assert listed.returncode == 0 and "mostloaded" in listed.stdout, listed.stdout + listed.stderr
    # east has 1 cpu: 6 tasks of 30 s there is load 6; south (4 cpus) gets 8, load 2
    for node, tasks in (("east", 6), ("south", 8)):
        submitted = ctl(env, "submit", node, "--tasks", str(tasks), "-t", str(topology))
        assert submitted.returncode == 0, submitted.stderr
    run = ctl(env, "wave", "mostloaded", "--json", "-t", str(topology))
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout)
    assert result["kind"] == "mostloaded"
    (initiator,) = result["initiators"]
    assert result["results"][initiator]["node"] == "east", result
    assert result["results"][initiator]["load"] == pytest.approx(6.0)


def test_an_unknown_parameter_is_refused_naming_it(cluster):
    env, topology = cluster
    run = ctl(env, "wave", "mostloaded", "--param", "nope=1", "-t", str(topology))
    assert run.returncode == 2 and "no such parameter" in run.stderr, run.stderr
