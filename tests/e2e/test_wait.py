"""``ctl wait`` on real clusters: termination detected by the token wave (daemon/core/
termination.py) over real processes and sockets, cross-checked by an echo right after;
and a node killed mid-run named rather than waited for. The cluster_env fixture proves
by pid that nothing is left afterwards."""

from __future__ import annotations

import json
import os
import signal
import time

import psutil
import pytest

from daemon.core.tasks import account

pytestmark = pytest.mark.e2e


def test_wait_returns_once_every_task_has_run_and_no_move_is_in_flight(cluster_env):
    topo = cluster_env.start("seed.toml")
    # none at root, the initiator: it is idle while the others work (8, 2 and 2 CPUs)
    submits = {"pical": (4, 3.0), "affixed": (16, 1.0), "subserviate": (8, 1.5)}
    submitted_at = time.monotonic()  # before the first submit: pical's tasks end 3 s after this, or later
    for node, (tasks, cost) in submits.items():
        r = cluster_env.ctl("submit", "-t", topo, node, "--tasks", tasks, "--cost", cost)
        assert r.returncode == 0, r.stderr
    moved = cluster_env.ctl("rebalance", "-t", topo, "--json")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["moves"], moved.stdout  # tasks did move: the detector had moves to see

    r = cluster_env.ctl("wait", "-t", topo, "--timeout", "120", "--json", timeout=180)
    returned_at = time.monotonic()
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["terminated"] is True, out

    snap = cluster_env.ctl_json("echo", "-t", topo, "--timeout", "10")
    books = account(snap["nodes"])
    assert (books["queued"], books["running"], books["in_flight"]) == (0, 0, 0), books
    assert books["done"] == books["submitted"] == sum(t for t, _ in submits.values()), books
    assert not snap["missing"], snap["missing"]
    # pical's tasks alone take 3 s from their submit: a detection sooner would be false
    assert returned_at - submitted_at >= 3.0
    assert out["rounds"] >= 2, out  # the first round never succeeds: a new instance is black

    text = cluster_env.ctl("wait", "-t", topo, "--timeout", "30")  # idle now: at once, in words
    assert text.returncode == 0 and text.stdout.startswith("terminated: every task has run"), text.stdout


def test_wait_names_a_killed_node_instead_of_hanging(cluster_env):
    topo = cluster_env.start("seed.toml")
    assert cluster_env.ctl("submit", "-t", topo, "pical", "--tasks", "4", "--cost", "600").returncode == 0
    record = cluster_env.record("seed")
    supervisor, victim = record["supervisor"]["pid"], record["nodes"]["pical"]["pid"]
    os.kill(supervisor, signal.SIGSTOP)  # no restart while the wait runs
    try:
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while psutil.Process(victim).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "pical did not die"
            time.sleep(0.05)
        t0 = time.monotonic()
        r = cluster_env.ctl("wait", "-t", topo, "--timeout", "120", "--json", timeout=180)
        took = time.monotonic() - t0
        assert r.returncode == 1, r.stdout + r.stderr
        out = json.loads(r.stdout)
        assert out["terminated"] is False and out["reason"] == "dead" and out["dead"] == ["pical"], out
        assert took < 60, f"ctl wait took {took:.1f} s to name the dead node"
        text = cluster_env.ctl("wait", "-t", topo, "--timeout", "120", timeout=180)
        assert text.returncode == 1 and "node pical does not answer" in text.stderr, text.stderr
    finally:
        os.kill(supervisor, signal.SIGCONT)
