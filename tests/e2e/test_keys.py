"""A cluster's keys on a real cluster (daemon/security.py; ARCHITECTURE.md, "Launch state
is fresh or verified"): ``ctl start`` refuses the keys of another cluster, ``ctl keygen``
refuses to replace a running cluster's, and the supervisor puts back the keys it runs
with when they are removed or replaced under it, so that ctl and restarted nodes still
complete their handshakes."""

from __future__ import annotations

import os
import shutil
import signal

import pytest

from daemon import security
from daemon.topology import load
from polling import WAIT, wait_until

pytestmark = pytest.mark.e2e


def test_ctl_start_refuses_the_keys_of_another_cluster(cluster_env):
    topo = cluster_env.topology("seed.toml", rebalance_interval=0)
    keys = cluster_env.copy_in_keys_of_another_cluster(topo)
    started = cluster_env.ctl("start", topo)
    assert started.returncode == 1, started.stdout + started.stderr
    assert f"{keys}: these are the keys of cluster 'other', not of seed" in started.stderr, started.stderr
    assert f"remove {keys} and `ctl start` makes a new set" in started.stderr and "Traceback" not in started.stderr
    assert not cluster_env.processes()
    shutil.rmtree(keys)  # as the message says: then the start makes this cluster's keys
    assert cluster_env.ctl("start", topo).returncode == 0
    cluster_env.echo_reaches_every_node(topo)


def test_a_running_clusters_keys_are_neither_replaced_nor_lost(cluster_env):
    topo = cluster_env.start("seed.toml")
    run_dir = cluster_env.home / "seed"
    keys = security.keys_dir(run_dir)
    before = security.read_files(run_dir)

    made = cluster_env.ctl("keygen", "-t", topo)
    assert made.returncode == 1, made.stdout + made.stderr
    assert "cluster seed is running (supervisor pid" in made.stderr and "stop it first" in made.stderr, made.stderr
    assert "remove" not in made.stderr  # the old advice: remove the keys of a running cluster
    assert security.read_files(run_dir) == before

    shutil.rmtree(keys)  # what that advice made users do: the supervisor writes them back
    wait_until(lambda: keys.is_dir() and security.read_files(run_dir) == before, WAIT, "the keys written back")
    cluster_env.echo_reaches_every_node(topo)

    # Another set in their place (file by file: the keyring stays, so only a restart
    # notices), then a node that crashes: restarted, it must get the cluster's keys, not
    # the new ones, with which no other node would talk to it.
    for name, data in security.share_files(load(topo)).items():
        (keys / name).write_bytes(data)
    assert security.read_files(run_dir) != before
    node = cluster_env.record("seed")["nodes"]["pical"]
    os.kill(node["pid"], signal.SIGKILL)
    wait_until(lambda: (lambda n: n["pid"] != node["pid"] and n["state"] == "RUNNING")(
        cluster_env.record("seed")["nodes"]["pical"]), WAIT, "pical restarted and RUNNING")
    assert security.read_files(run_dir) == before
    # it joins only waves begun after its epoch, half a second ahead of its clock
    # (daemon/core/node.py restart_epoch): the first echo may come too early
    wait_until(lambda: cluster_env.ctl("echo", "-t", topo, "--json").returncode == 0, WAIT,
               "an echo that reaches every node, pical through its restarted process")
