"""A node killed with SIGKILL and started again keeps its queue and its moves.

Real daemon processes (``python -m daemon``) on loopback, each started by the test with
a run directory, so each keeps its journal there (daemon/journal.py). The supervisor is
left out on purpose: these tests start a node again by hand, with the same arguments.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from polling import wait_until

from daemon.operator import NodeError, Operator
from daemon.topology import load

pytestmark = pytest.mark.e2e

WAIT_FOR = 30.0  # seconds for a state of the two nodes: generous, the machine is shared

TOPOLOGY = """
[cluster]
name = "journal"
host = "127.0.0.1"
base_port = {base}
operator_port_offset = {offset}
rebalance_interval = 0
security = "none"  # the journal is under test here; tests/e2e/test_security.py covers CURVE

[[node]]
name = "donor"
cpus = 1

[[node]]
name = "taker"
cpus = 1
parents = ["donor"]
"""


class Daemons:
    """Node daemons started by the test, each stopped by pid in ``close``."""

    def __init__(self, env, path, run_dir):
        self.env, self.path, self.run_dir = env, path, run_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> int:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "--topology", str(self.path), "--node", name, "--run-dir", str(self.run_dir)],
            env=self.env.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs[name] = proc
        line = proc.stdout.readline()
        assert line.startswith("ready"), (line, proc.stderr.read() if proc.poll() is not None else "")
        return proc.pid

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()

    def signal(self, name: str, signum: int) -> None:
        self.procs[name].send_signal(signum)

    def close(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            proc.stdout.close()
            proc.stderr.close()


@pytest.fixture
def daemons(cluster_env, tmp_path):
    path = tmp_path / "journal.toml"
    path.write_text(TOPOLOGY.format(base=cluster_env._reserve_ports(2), offset=cluster_env.OPERATOR_OFFSET))
    d = Daemons(cluster_env, path, tmp_path / "run")
    yield d
    d.close()


def by_name(snapshot) -> dict:
    return {n["name"]: n for n in snapshot["nodes"]}


def complete_echo(topology):
    """An echo that reached every node, or None (a node stopped, or not started again yet,
    is missing)."""
    try:
        with Operator(topology, timeout=3.0) as op:
            snap = op.echo()
    except NodeError:
        return None
    return None if snap["missing"] else snap


def started_with_work(daemons):
    """Both nodes up, ten 60 s tasks at the donor (one runs, nine wait)."""
    topology = load(daemons.path)
    daemons.start("donor")
    daemons.start("taker")
    with Operator(topology) as op:
        ids = op.submit("donor", 10, 60.0)["ids"]
    return topology, ids


def test_a_node_killed_and_started_again_keeps_its_queue(daemons):
    topology, ids = started_with_work(daemons)
    first = daemons.procs["donor"].pid
    daemons.kill("donor")
    assert daemons.start("donor") != first

    # it said ready only once it joins every wave begun from then on, although its epoch
    # runs ahead of its clock (daemon/core/node.py node_epoch, ready_at): the first echo has it
    snap = complete_echo(topology)
    assert snap is not None, "the echo right after the restarted donor said ready missed a node"
    donor = by_name(snap)["donor"]
    # the task that was running runs again (its start was not journaled); none is lost
    assert (donor["submitted"], donor["running"], donor["queued"], donor["done"]) == (10, 1, 9, 0)
    assert donor["outgoing"] == []
    assert len(ids) == 10


def move_three_to_the_stopped_taker(daemons, topology, ids) -> float:
    """SIGSTOP the taker, have the donor move its last three tasks there (the TRANSFER
    waits, unacknowledged); returns when the donor said so (time.monotonic())."""
    with Operator(topology) as op:
        op.ping()  # routes back from both nodes
        daemons.signal("taker", signal.SIGSTOP)
        op._send("donor", "move", move_id="mv-1", dest="taker", tasks=ids[-3:], count=0, id=1)
        moved = []
        op._collect(time.monotonic() + 10, lambda node, msg: msg["t"] == "move.ok" and not moved.append(msg))
        assert moved[0]["moved"] == ids[-3:]
        return time.monotonic()


def settled_split(topology) -> tuple[dict, dict]:
    """The donor's and the taker's samples once the move is acknowledged and forgotten."""

    def settled():
        snap = complete_echo(topology)
        nodes = by_name(snap) if snap else None
        if not nodes or nodes["donor"]["outgoing"] or nodes["taker"]["unconfirmed"]:
            return None
        return nodes

    nodes = wait_until(settled, WAIT_FOR, "the move acknowledged and forgotten")
    return nodes["donor"], nodes["taker"]


def test_a_move_in_flight_when_the_donor_dies_ends_exactly_once(daemons):
    topology, ids = started_with_work(daemons)
    move_three_to_the_stopped_taker(daemons, topology, ids)
    daemons.kill("donor")  # the move is leaving: only the journal knows it now
    daemons.start("donor")
    daemons.signal("taker", signal.SIGCONT)  # the restarted donor resends; the taker accepts once
    donor, taker = settled_split(topology)
    assert (donor["running"] + donor["queued"], taker["running"] + taker["queued"]) == (7, 3)
    assert donor["submitted"] + taker["submitted"] == 10 and donor["done"] + taker["done"] == 0


def test_a_donor_stopped_past_the_deadline_reads_the_taken_ack_before_taking_back(daemons):
    """The taker accepts a move while the donor is stopped (SIGSTOP): its ACK waits in
    the donor's socket. The donor is continued past the move's deadline plus grace. Its
    loop's overdue housekeeping tick and its I/O thread's delivery of the ACK then race
    (the scheduler's choice); when the tick comes first it must not take the move back
    before the ACK is read (daemon/core/node.py, "Time"). So: no take-back in the donor's
    journal, and the three tasks at the taker only. With that rule removed this test
    failed 1 run of 5 (the tick won the race once); with the late ACK's reclaim removed as
    well, the tasks ran at both. tests/node/test_node_core.py and the simulator's
    stalls (tests/sim/test_chaos.py) pin the rule deterministically."""
    import sqlite3

    from daemon.journal import read_history
    from daemon.node import journal_file

    topology, ids = started_with_work(daemons)
    # an echo first: the links between the two are made (a connection's handshake needs
    # both ends running, and one of them is always stopped below)
    wait_until(lambda: complete_echo(topology), WAIT_FOR, "an echo over both links")
    sent = move_three_to_the_stopped_taker(daemons, topology, ids)
    daemons.signal("donor", signal.SIGSTOP)
    daemons.signal("taker", signal.SIGCONT)  # accepts, and ACKs to the stopped donor

    def accepted():
        try:
            db = sqlite3.connect(f"file:{journal_file(daemons.run_dir, 'taker')}?mode=ro", uri=True)
            try:
                return db.execute("SELECT accepted FROM seen WHERE move_id = 'mv-1'").fetchone() == (1,)
            finally:
                db.close()
        except sqlite3.Error:
            return False

    wait_until(accepted, WAIT_FOR, "the taker to accept the move")
    assert time.monotonic() - sent < 5.0, "the taker accepted after the move's expiry: the test proves nothing"
    # the move's deadline (5 s) and grace (1 s) pass while the donor is stopped
    wait_until(lambda: time.monotonic() > sent + 7.0, WAIT_FOR, "the move's deadline and grace to pass")
    daemons.signal("donor", signal.SIGCONT)
    donor, taker = settled_split(topology)
    assert (donor["running"] + donor["queued"], taker["running"] + taker["queued"]) == (7, 3)
    _, taken_back = read_history(journal_file(daemons.run_dir, "donor"))
    assert taken_back == [], f"the donor took the move back before reading its ACK: {taken_back}"
