"""A submit is balanced at once, not at the next tick of the balancing clock: the node
asks the supervisor's balancer for a round (daemon/core/asking.py,
daemon/cluster/balancer.py). The clock here is 60 s, so only the ask can explain moves
within the test's bound (a bound on waiting, far below the clock, not a speed check)."""

from __future__ import annotations

import time

import pytest

from daemon.core.tasks import account
from daemon.operator import Operator
from daemon.topology import load

pytestmark = pytest.mark.e2e

CLOCK = 60.0  # the topology's rebalance_interval: no clock round within the test
BOUND = 20.0  # seconds the test waits for the moves: a third of the clock, on a loaded machine


def _supervisor_log(cluster_env, name: str) -> str:
    path = cluster_env.home / name / "supervisor.log"
    return path.read_text(errors="replace") if path.exists() else ""


def test_a_submit_is_followed_by_moves_long_before_the_clock(cluster_env):
    path = cluster_env.topology("seed.toml", rebalance_interval=CLOCK)
    r = cluster_env.ctl("start", path)
    assert r.returncode == 0, r.stdout + r.stderr
    topology = load(path)
    deadline = time.monotonic() + BOUND
    while "whenever a node asks" not in _supervisor_log(cluster_env, topology.cluster.name):
        assert time.monotonic() < deadline, "the balancer never said it watches the nodes:\n" + \
            _supervisor_log(cluster_env, topology.cluster.name)
        time.sleep(0.1)
    with Operator(topology, timeout=10.0) as op:
        op.echo()  # connected before the clock starts
        t0 = time.monotonic()
        op.submit("subserviate", 40, 30.0)  # long tasks: nothing ends during the test
        while True:
            snap = op.echo()
            books = account(snap["nodes"])
            assert books["balanced"] and books["submitted"] == 40, books
            elsewhere = sum(n["queued"] + n["running"] for n in snap["nodes"] if n["name"] != "subserviate")
            if elsewhere:
                break
            assert time.monotonic() - t0 < BOUND, f"no task left subserviate within {BOUND:g} s: {books}"
            time.sleep(0.05)
        took = time.monotonic() - t0
    assert took < CLOCK / 3, took
    # the round logs once it ends (after its second echo), perhaps after the echo above
    while ", asked by a node" not in _supervisor_log(cluster_env, topology.cluster.name):
        assert time.monotonic() - t0 < BOUND, "no round asked by a node in the log:\n" + \
            _supervisor_log(cluster_env, topology.cluster.name)
        time.sleep(0.1)
