"""Several nodes in one daemon process (``[cluster] nodes_per_process``, daemon/node.py
NodeHost), with real processes: the supervisor groups its nodes in file order, one pid
per group; waves, submits and the balancer work within a process and across processes;
a SIGKILLed process's nodes all come back with their journals (no task lost); garbage
sent to one node harms none of its process's others; and ``ctl stop`` leaves nothing."""

from __future__ import annotations

import os
import signal

import psutil
import pytest
import zmq

from daemon.core.tasks import account
from daemon.operator import Operator
from daemon.topology import load
from polling import wait_until

pytestmark = pytest.mark.e2e

SEED = ["root", "affixed", "haywagon", "tubularia", "preindemnifying", "subserviate", "pical", "outwhirled"]
GROUPS = [SEED[0:3], SEED[3:6], SEED[6:8]]  # nodes_per_process = 3, file order
RESTART_WAIT = 60.0


def _served(pid: int) -> list[str]:
    args = [a for a in psutil.Process(pid).cmdline() if a]
    return [args[i + 1] for i in range(len(args) - 1) if args[i] == "--node"]


@pytest.mark.parametrize("spawn", ["fork", "exec"])
def test_nodes_share_processes_in_file_order_and_work_across_them(cluster_env, spawn):
    cluster_env.env["ECHOFINN_SPAWN"] = spawn
    topo = cluster_env.start("seed.toml", nodes_per_process=3)
    topology = load(topo)
    record = cluster_env.record("seed")
    supervisor = record["supervisor"]["pid"]
    pids = []
    for group in GROUPS:
        group_pids = {record["nodes"][name]["pid"] for name in group}
        assert len(group_pids) == 1, (group, group_pids)
        pid = group_pids.pop()
        pids.append(pid)
        assert psutil.Process(pid).ppid() == supervisor
        assert _served(pid) == group  # what ps and ctl stop see
        for name in group:
            assert record["nodes"][name]["endpoint"] == topology.endpoint(name), record["nodes"][name]
    assert len(set(pids)) == 3

    status = cluster_env.ctl_json("status")
    assert all(n["alive"] and n["state"] == "RUNNING" for n in status["nodes"]), status["nodes"]
    snap = cluster_env.ctl_json("echo")
    assert snap["complete"] and sorted(n["name"] for n in snap["nodes"]) == sorted(SEED)
    edges = sum(len(topology.parents(n)) for n in SEED)
    assert snap["messages"] == 2 * edges, snap["messages"]
    finn = cluster_env.ctl_json("finn", "--tasks", "1", "--cost", "0.05")
    assert sorted(finn["decided"]) == sorted(SEED), finn

    # a burst at one node, spread by the balancer to nodes of its own process and others
    sub = cluster_env.ctl_json("submit", "subserviate", "--tasks", "24", "--cost", "2")
    assert sub["tasks"] == 24
    res = cluster_env.ctl_json("rebalance")
    destinations = {m["to"] for m in res["moves"]}
    assert res["moved"] > 0 and destinations, res
    with Operator(topology) as op:
        books = account(op.echo(detail=True)["nodes"])
    assert books["balanced"] and books["submitted"] == 24 + len(SEED), books

    stopped = cluster_env.ctl("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "8 nodes in 3 processes" in stopped.stdout, stopped.stdout
    log = (cluster_env.home / "seed" / "supervisor.log").read_text()
    assert "stopping 8 nodes in 3 processes: SIGTERM root,affixed,haywagon=" in log, log
    assert not cluster_env.processes()
    for pid in pids:
        assert cluster_env.gone(pid)


def test_a_killed_process_brings_all_its_nodes_back_with_their_queues(cluster_env):
    topo = cluster_env.start("seed.toml", nodes_per_process=3)
    topology = load(topo)
    with Operator(topology) as op:
        for name in GROUPS[1]:  # tubularia, preindemnifying, subserviate: one process
            op.submit(name, 5, 3600.0)
        before = cluster_env.record("seed")["nodes"]
    victim = before["tubularia"]["pid"]
    os.kill(victim, signal.SIGKILL)

    def restarted():
        nodes = cluster_env.record("seed")["nodes"]
        entries = [nodes[n] for n in GROUPS[1]]
        return all(e["state"] == "RUNNING" and e["pid"] != victim for e in entries) and entries

    entries = wait_until(restarted, RESTART_WAIT, "the killed process's three nodes to be restarted")
    assert len({e["pid"] for e in entries}) == 1, entries  # one new process for the three
    assert all(e["restarts"] == 1 and e["last_exit"] == "killed by SIGKILL" for e in entries), entries
    others = cluster_env.record("seed")["nodes"]
    assert all(others[n]["restarts"] == 0 for n in GROUPS[0] + GROUPS[2]), others
    assert cluster_env.gone(victim, before["tubularia"]["create_time"])

    # RUNNING means reachable: the process said ready only once each of its restarted nodes
    # joins every new wave (daemon/core/node.py node_epoch, ready_at), so the first echo has them
    echo = cluster_env.ctl("echo", "--json")
    assert echo.returncode == 0, echo.stdout + echo.stderr
    with Operator(topology) as op:
        snap = op.echo(detail=True)
    books = account(snap["nodes"])
    per_node = {n["name"]: n["running"] + n["queued"] for n in snap["nodes"]}
    assert books["balanced"] and books["submitted"] == 15, books
    assert all(per_node[n] == 5 for n in GROUPS[1]), per_node  # each journal gave its node its queue back


def test_garbage_at_one_node_harms_none_of_its_process(cluster_env):
    """A hostile local client (no CURVE here, so its frames reach the core's edge) sends
    garbage and forged node messages to one node of a process: every node of that
    process still answers, and the garbage is counted where it was sent."""
    topo = cluster_env.start("seed.toml", nodes_per_process=3, security="none")
    topology = load(topo)
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IDENTITY, b"affixed")  # a node's name, forged
        sock.connect(topology.endpoint("haywagon"))
        for frame in (b"\xc1", b"", b"\x81\xa1v\x01", b"x" * 4096, b"\x93\x01\x02\x03"):
            sock.send(frame)
        with Operator(topology) as op:
            wait_until(lambda: (op.ping(["haywagon"])["haywagon"] or {}).get("stats", {}).get("garbage", 0) >= 5,
                       20, "haywagon to count the five frames")
            pongs = op.ping()
            snap = op.echo()
    finally:
        ctx.destroy(linger=0)
    assert all(pongs[n] is not None for n in SEED), pongs
    assert snap["complete"], snap["missing"]
    assert pongs["haywagon"]["stats"]["garbage"] == 5, pongs["haywagon"]["stats"]
    assert all(pongs[n]["stats"]["garbage"] == 0 for n in SEED if n != "haywagon")
    assert all(pongs[n]["stats"]["internal"] == 0 for n in SEED)
