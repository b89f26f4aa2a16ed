"""A real cluster's recordings replay step for step (daemon/recording.py,
daemon/sim/replay.py, ``ctl sim replay``): the cores of every node, run again in one
process from their recorded start states and inputs, give the effects they gave.
The chaos test (tests/e2e/test_chaos_real.py) replays its recordings too, with kills,
stops and restarts from journals."""

from __future__ import annotations

import pytest

from daemon.operator import Operator
from daemon.topology import load

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("per_process, how", [(1, "file"), (4, "file"), (1, "ctl start --record")])
def test_a_recorded_cluster_replays_without_divergence(cluster_env, per_process, how):
    """A process per node, four nodes per process (daemon/node.py NodeHost), and the
    switch given to ``ctl start`` rather than written in the file."""
    topo = cluster_env.topology("seed.toml", rebalance_interval=0, task_time=0.05, nodes_per_process=per_process,
                                nodes={"root": {"tasks": 4}}, **({"record": True} if how == "file" else {}))
    r = cluster_env.ctl("start", topo, *(["--record"] if how != "file" else []))
    assert r.returncode == 0, r.stdout + r.stderr
    with Operator(load(topo), timeout=5.0) as op:
        op.submit("affixed", 12, 0.05, label="replayed")
        assert not op.echo()["missing"]
        op.finn(tasks=1, cost=0.05)
        op.rebalance()
    assert cluster_env.ctl("stop", "-t", topo).returncode == 0
    r = cluster_env.ctl("sim", "replay", "seed")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no divergence" in r.stdout, r.stdout
    files = list((cluster_env.home / "seed" / "recording").iterdir())
    assert len(files) == len(load(topo).names), files
