"""Waves over real daemons: echo, Finn, submit and rebalance on real processes and sockets.

Every test starts its own cluster through ``ctl start`` (a real supervisor and one real
daemon per node, on ports reserved for the test) and the ``cluster_env`` fixture proves
by pid that nothing is left afterwards. The echo and Finn wave tests run their clusters
recording (``record = true``) and check their own wave's trace for Tel's wave properties
(``cluster_env.wave_trace_holds``: daemon/trace/check.py on real processes).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest
import zmq

from daemon import wire
from daemon.core.tasks import account
from daemon.operator import Operator
from daemon.topology import load

pytestmark = pytest.mark.e2e

DEADLINE = 60.0  # a bound on waiting for work to finish, not a speed check


def started(env, file="seed.toml", **cluster):
    return env.start(file, **cluster)


# The tests that read from a seed cluster and add no task share one (module_cluster_env):
# one worker runs them, one after the other.
SHARED = pytest.mark.xdist_group("waves-shared-seed")


@pytest.fixture(scope="module")
def shared_seed(module_cluster_env):
    """A recording seed cluster the module's read-only tests share: (env, topology path)."""
    return module_cluster_env, started(module_cluster_env, record=True)


def _ledger(books, snap) -> str:
    """The totals and every node's hand-off state, for a failed accounting check."""
    rows = [f"{n['name']}: run {n['running']} queue {n['queued']} done {n['done']} submitted {n['submitted']} "
            f"outgoing {n['outgoing']} unconfirmed {n['unconfirmed']}" for n in snap["nodes"]]
    return f"{books}\n" + "\n".join(rows)


def assert_spanning_tree(nodes, initiator):
    fathers = {n["name"]: n["father"] for n in nodes}
    assert fathers[initiator] is None
    for name in fathers:  # every node reaches the initiator by father pointers, no cycle
        seen = set()
        while name is not None:
            assert name not in seen
            seen.add(name)
            name = fathers[name]
        assert initiator in seen


@SHARED
def test_echo_lists_every_node_of_the_seed_tree_with_14_messages(shared_seed):
    cluster_env, path = shared_seed
    snap = cluster_env.ctl_json("echo", "-t", path)
    cluster_env.wave_trace_holds(path, snap["wave"], "echo")
    names = [n["name"] for n in snap["nodes"]]
    assert sorted(names) == sorted(load(path).names) and len(names) == 8
    assert snap["messages"] == 14  # 2|E| on the seed tree's 7 edges
    assert snap["initiator"] == "root"
    assert_spanning_tree(snap["nodes"], "root")
    cpus = {n["name"]: n["cpus"] for n in snap["nodes"]}
    assert cpus["pical"] == 8 and cpus["subserviate"] == 2
    assert snap["elapsed_ms"] > 0
    text = cluster_env.ctl("echo", "-t", path)
    assert text.returncode == 0 and "8/8 nodes, 14 messages" in text.stdout


def test_echo_on_a_dag_from_another_initiator(cluster_env):
    path = started(cluster_env, "dag.toml", record=True)
    topology = load(path)
    initiator = topology.names[-1]
    snap = cluster_env.ctl_json("echo", "-t", path, "--from", initiator)
    cluster_env.wave_trace_holds(path, snap["wave"], "echo")
    assert len(snap["nodes"]) == len(topology.names)
    links = sum(len(topology.neighbours(n)) for n in topology.names) // 2
    assert snap["messages"] == 2 * links
    assert_spanning_tree(snap["nodes"], initiator)


def test_burst_is_spread_by_rebalance_and_accounting_holds_until_done(cluster_env):
    path = started(cluster_env)
    topology = load(path)
    # 2 s tasks: the burst outlasts the first echo after the rebalance even on a loaded
    # machine, so the accounting is checked while work is in progress.
    sub = cluster_env.ctl_json("submit", "subserviate", "--tasks", "24", "--cost", "2", "-t", path)
    assert sub["tasks"] == 24
    with Operator(topology) as op:
        op.echo()  # connected (CURVE handshakes done) before the burst spreads and runs
        res = cluster_env.ctl_json("rebalance", "-t", path)
        assert res["moves"], res
        assert all(m["from"] == "subserviate" for m in res["moves"])
        assert res["moved"] > 0
        assert res["imbalance_after"] < res["imbalance_before"]
        deadline = time.monotonic() + DEADLINE
        echoes = 0
        while True:
            snap = op.echo(detail=True)
            echoes += 1
            books = account(snap["nodes"])
            assert books["balanced"], _ledger(books, snap)  # submitted = done + queued + running + in flight
            assert books["submitted"] == 24
            if books["done"] == 24:
                break
            assert time.monotonic() < deadline, f"work not finished after {DEADLINE} s: {books}"
            time.sleep(0.05)
    done_at = {n["name"]: n["done"] for n in snap["nodes"]}
    assert done_at["subserviate"] < 24  # others did part of the burst
    assert sum(v > 0 for v in done_at.values()) >= 2
    assert echoes >= 2
    # Once no move is outstanding (each acknowledged or taken back after its deadline,
    # and forgotten by its destination): none came back, nothing ran twice.
    with Operator(topology) as op:
        deadline = time.monotonic() + DEADLINE
        while True:
            snap = op.echo(detail=True)
            if all(n["outgoing"] == [] and n["unconfirmed"] == [] for n in snap["nodes"]):
                break
            assert time.monotonic() < deadline, f"moves still outstanding after {DEADLINE} s: {snap['nodes']}"
            time.sleep(0.2)
    books = account(snap["nodes"])
    assert books["balanced"] and books["done"] == 24 and books["queued"] == 0, _ledger(books, snap)


def test_rebalance_while_tasks_move_keeps_every_task_exactly_once(cluster_env):
    """Rounds back to back, each echo checked: moves in flight at an echo are counted
    once (the Lai-Yang tags on TRANSFER/ACK make the samples a consistent cut)."""
    path = started(cluster_env)
    topology = load(path)
    with Operator(topology) as op:
        op.submit("subserviate", 30, 0.3)
        op.submit("affixed", 10, 0.3)
        total = 40
        deadline = time.monotonic() + DEADLINE
        while True:
            res = op.rebalance("heap")
            for snap in (res["before"], res["after"]):
                books = account(snap["nodes"])
                assert books["balanced"] and books["submitted"] == total, _ledger(books, snap)
            if books["done"] == total:
                break
            assert time.monotonic() < deadline, books


def test_seed_policy_moves_one_task_per_loaded_node(cluster_env):
    path = started(cluster_env)
    cluster_env.ctl_json("submit", "subserviate", "--tasks", "10", "--cost", "30", "-t", path)
    res = cluster_env.ctl_json("rebalance", "--policy", "seed", "-t", path)
    assert [(m["from"], len(m["tasks"])) for m in res["moves"]] == [("subserviate", 1)]


@SHARED
def test_finn_wave_adds_k_tasks_on_every_node(shared_seed):
    cluster_env, path = shared_seed
    res = cluster_env.ctl_json("finn", "--tasks", "2", "--cost", "0.2", "-t", path)
    cluster_env.wave_trace_holds(path, res["wave"], "finn")
    assert sorted(res["decided"]) == sorted(load(path).names)
    assert res["undecided"] == []
    assert res["messages"] == 7  # on an out-tree Finn is a broadcast: N - 1 messages
    assert res["enqueued"] == 16
    snap = cluster_env.ctl_json("echo", "-t", path)
    assert all(n["submitted"] == 2 for n in snap["nodes"])


@pytest.mark.parametrize("file", ["dag.toml", "strong.toml"])
def test_finn_wave_decides_everywhere_on_dags_and_cycles(cluster_env, file):
    path = started(cluster_env, file, record=True)
    topology = load(path)
    res = cluster_env.ctl_json("finn", "--tasks", "1", "--cost", "0.1", "-t", path)
    cluster_env.wave_trace_holds(path, res["wave"], "finn")
    assert sorted(res["decided"]) == sorted(topology.names)
    assert res["initiators"] == list(topology.finn_initiators())
    assert res["messages"] <= 2 * len(topology.names) * topology.edge_count


def test_garbage_on_a_node_socket_is_answered_and_counted_not_fatal(cluster_env):
    # without authentication, so that a plain DEALER reaches every check of the edge
    # (what CURVE refuses before that: tests/e2e/test_security.py)
    path = started(cluster_env, security="none")
    topology = load(path)
    port = topology.node("tubularia").port
    # raw bytes that are not ZMTP at all: libzmq drops the connection
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(os.urandom(512))
    ctx = zmq.Context()
    try:
        d = ctx.socket(zmq.DEALER)
        d.setsockopt(zmq.LINGER, 0)
        d.setsockopt(zmq.IDENTITY, b"garbage-test")
        d.connect(topology.operator_endpoint("tubularia"))
        bad_frames = [
            b"\xc1not msgpack",
            wire._packer.pack([1, 2, 3]),
            wire._packer.pack({"v": 99, "t": "ping", "e": 0, "id": 1}),
            wire._packer.pack({"v": 2, "t": "ping", "e": 0, "id": "one"}),
            wire._packer.pack({"v": 2, "t": "launch-missiles", "e": 0}),
            wire.encode("wave", 0, wave="w", msg="echo", body=[wire.pack_entries([("x", None, {})])],
                        params={}, budget=None, report=b""),  # an ECHO from a non-neighbour
        ]
        errors = []
        for frame in bad_frames:
            d.send(frame)
            assert d.poll(30_000), "the node stopped answering"
            errors.append(wire.decode(d.recv()))
        d.send_multipart([b"two", b"frames"])
        assert d.poll(30_000)
        errors.append(wire.decode(d.recv()))
        assert [e["t"] for e in errors] == ["error"] * 7
        assert "'id' must be int" in errors[3]["text"]
        assert "an operator cannot send 'echo'" in errors[5]["text"]  # an operator cannot speak as a node
        # a wave that began before the node started (a stale backlog): dropped, counted
        d.send(wire.encode("wave.start", 0, id=1, wave=wire.new_wave_id("e", 1, "old"), kind="echo", params={"detail": False},
                           timeout=5.0))
        assert d.poll(5000)
        assert wire.decode(d.recv())["code"] == "stale"  # an operator is told
        d.send(wire.encode("ping", 0, id=7))
        assert d.poll(30_000)
        pong = wire.decode(d.recv())
        assert pong["t"] == "pong" and pong["stats"]["stale"] == 1, pong
        d.close()
    finally:
        ctx.destroy(linger=0)
    with Operator(topology) as op:
        pong = op.ping(["tubularia"])["tubularia"]
        assert pong["stats"]["garbage"] >= 6
        assert len(op.echo()["nodes"]) == 8  # still a working member of the cluster


def test_a_node_killed_mid_run_is_named_by_echo_and_finn(cluster_env):
    path = started(cluster_env, restart="never")  # pical stays dead (restarts: test_faults.py)
    record = cluster_env.record("seed")
    os.kill(record["nodes"]["pical"]["pid"], signal.SIGKILL)
    r = cluster_env.ctl("echo", "-t", path, "--timeout", "2")
    assert r.returncode == 1
    assert "pical" in r.stderr and "Traceback" not in r.stderr
    # The wave cannot finish (pical never decides), so it always runs to its timeout: a
    # short one, doubled while a loaded machine leaves live nodes undecided too.
    for timeout in (2, 4, 8, 16, 32):
        f = cluster_env.ctl("finn", "-t", path, "--timeout", timeout, "--json")
        assert f.returncode == 1, f.stderr
        res = json.loads(f.stdout)
        assert "pical" in res["undecided"] and "pical" in res["unreachable"], res
        if len(res["decided"]) == 7:
            break
    assert res["undecided"] == ["pical"] and res["unreachable"] == ["pical"], res
    result = cluster_env.ctl("status", "-t", path, "--timeout", 30, "--json")
    assert result.returncode == 1, result.stderr  # a node is not RUNNING
    rows = {row["name"]: row for row in json.loads(result.stdout)["nodes"]}
    assert rows["pical"]["alive"] is False and rows["pical"]["ping_ms"] is None
    silent = [name for name, row in rows.items() if name != "pical" and row["ping_ms"] is None]
    assert silent == [], f"live nodes that did not answer a ping in 30 s: {silent}"
    assert all(row["ping_ms"] > 0 for name, row in rows.items() if name != "pical")


@SHARED
def test_bad_arguments_name_what_is_wrong(shared_seed):
    cluster_env, path = shared_seed
    r = cluster_env.ctl("submit", "nosuchnode", "-t", path)
    assert r.returncode == 2 and "nosuchnode" in r.stderr
    r = cluster_env.ctl("submit", "root", "--tasks", "0", "-t", path)
    assert r.returncode == 2 and "--tasks" in r.stderr
    r = cluster_env.ctl("echo", "--from", "nosuchnode", "-t", path)
    assert r.returncode == 2 and "nosuchnode" in r.stderr
    r = cluster_env.ctl("finn", "--from", "pical", "-t", path)
    assert r.returncode == 2 and "pical" in r.stderr and "root" in r.stderr  # pical reaches no one
    r = cluster_env.ctl("finn", "--from", "root", "--tasks", "0", "-t", path)
    assert r.returncode == 0, r.stderr


def test_the_supervisor_balances_every_rebalance_interval(cluster_env):
    """The original lab's scenario 1: no `ctl rebalance`, the supervisor's timer does it."""
    path = started(cluster_env, rebalance_interval=0.5)
    topology = load(path)
    with Operator(topology) as op:
        op.submit("subserviate", 20, 0.5)
        deadline = time.monotonic() + DEADLINE
        while True:
            snap = op.echo(detail=True)
            books = account(snap["nodes"])
            assert books["balanced"], books
            if books["done"] == 20:
                break
            assert time.monotonic() < deadline, books
            time.sleep(0.1)
    done_at = {n["name"]: n["done"] for n in snap["nodes"]}
    assert done_at["subserviate"] < 20 and sum(v > 0 for v in done_at.values()) >= 3, done_at
    log = (cluster_env.home / "seed" / "supervisor.log").read_text()
    assert "balancing round:" in log


def test_ctl_wave_runs_echo_and_finn_by_name_on_a_real_cluster(cluster_env):
    """The generic command: any installed kind by name, its parameters checked against
    the kind's bounds, every decision collected (Finn: all eight nodes; echo: the
    initiator, with one entry per node)."""
    path = started(cluster_env, record=True)
    names = load(path).names
    finn = cluster_env.ctl_json("wave", "finn", "--param", "tasks=2", "--param", "cost=0.2", "-t", path)
    cluster_env.wave_trace_holds(path, finn["wave"], "finn")
    assert finn["kind"] == "finn" and finn["complete"] and sorted(finn["decided"]) == sorted(names)
    assert finn["params"] == {"tasks": 2, "cost": 0.2} and finn["initiators"] == ["root"]
    assert all(len(r["enqueued"]) == 2 for r in finn["results"].values())
    assert sum(r["sent"] for r in finn["results"].values()) == 7  # an out-tree: N - 1 messages
    echo = cluster_env.ctl_json("wave", "echo", "--initiator", "pical", "-t", path)
    cluster_env.wave_trace_holds(path, echo["wave"], "echo")
    assert echo["decided"] == ["pical"] and echo["complete"]
    entries = echo["results"]["pical"]
    assert sorted(e[0] for e in entries) == sorted(names) and entries[0][:2] == ["pical", None]
    assert sum(e[2]["submitted"] for e in entries) == 16  # the Finn wave's tasks, every one counted once
    text = cluster_env.ctl("wave", "finn", "-t", path)
    assert text.returncode == 0 and "decided: 8/8 nodes" in text.stdout
