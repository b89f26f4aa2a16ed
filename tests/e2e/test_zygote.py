"""Nodes forked from the supervisor (daemon/zygote.py), with real processes: each one
looks like a node to ``ps`` and to ``ctl``, holds none of the supervisor's descriptors,
and the old way (``ECHOFINN_SPAWN=exec``, a fresh interpreter per node) still works."""

from __future__ import annotations

import os

import psutil
import pytest

pytestmark = pytest.mark.e2e

SEED = ["root", "affixed", "haywagon", "tubularia", "preindemnifying", "subserviate", "pical", "outwhirled"]


def _fd_targets(pid: int) -> list[str]:
    folder = f"/proc/{pid}/fd"
    targets = []
    for fd in os.listdir(folder):
        try:
            targets.append(os.readlink(os.path.join(folder, fd)))
        except OSError:
            pass
    return targets


@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_nodes_are_children_that_look_like_nodes_and_hold_nothing_of_the_supervisor(cluster_env, spawn):
    cluster_env.env["ECHOFINN_SPAWN"] = spawn
    topo = cluster_env.topology("seed.toml", rebalance_interval=0)
    started = cluster_env.ctl("start", topo)
    assert started.returncode == 0, started.stderr
    record = cluster_env.record("seed")
    supervisor = record["supervisor"]["pid"]
    log = str(cluster_env.home / "seed" / "supervisor.log")
    for name in SEED:
        proc = psutil.Process(record["nodes"][name]["pid"])
        assert proc.ppid() == supervisor, name
        args = [a for a in proc.cmdline() if a]
        assert args[args.index("--node") + 1] == name, args
        assert os.getpgid(proc.pid) == proc.pid, f"node {name} is not in its own process group"
        targets = _fd_targets(proc.pid)
        # the notify pipe is closed once ready; no burner runs: no pipe at all, and
        # neither the supervisor's log nor its wakeup pipe or the others' notify pipes
        assert not [t for t in targets if t.startswith("pipe:")], (name, targets)
        assert log not in targets, (name, targets)
    status = cluster_env.ctl_json("status")
    assert all(n["alive"] for n in status["nodes"]), status["nodes"]
    snap = cluster_env.ctl_json("echo")
    assert sorted(n["name"] for n in snap["nodes"]) == sorted(SEED)
    stopped = cluster_env.ctl("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "8 nodes" in stopped.stdout, stopped.stdout
    assert not cluster_env.processes()
