"""The burner under a real node: psutil's CPU measurement reported by echo, the burner
going idle when the tasks end (kept, burning nothing), a burner killed under its node
(replaced on the next change), and the burner process's refusal of bad input.
(The burner on its own: tests/e2e/test_lifecycle.py.)"""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from daemon.operator import Operator
from daemon.topology import load
from polling import WAIT, wait_until

pytestmark = pytest.mark.e2e

def burners(node_pid: int) -> list[psutil.Process]:
    """The node's burner processes (its children running daemon.burner)."""
    found = []
    for child in psutil.Process(node_pid).children():
        try:
            if "daemon.burner" in child.cmdline():
                found.append(child)
        except psutil.Error:
            continue
    return found


def sample(topology, name: str) -> dict:
    with Operator(topology, timeout=30) as op:
        return next(n for n in op.echo(detail=True)["nodes"] if n["name"] == name)


def test_cpu_is_measured_and_the_burner_goes_idle_when_tasks_end(cluster_env):
    path = cluster_env.topology("seed.toml", rebalance_interval=0)
    assert cluster_env.ctl("start", path).returncode == 0
    topology = load(path)
    root = cluster_env.record("seed")["nodes"]["root"]["pid"]
    assert burners(root) == []  # started on first need
    # Every node measures itself once housekeeping has run: a number, not None.
    wait_until(lambda: sample(topology, "pical")["cpu_percent"] is not None, WAIT, "pical's first CPU measurement")
    with Operator(topology, timeout=30) as op:
        op.submit("root", 4, 2.0)  # root's 4 cpus, busy for 2 s of wall time
    (burner,) = wait_until(lambda: burners(root), WAIT, "root's burner")
    # psutil: the node's own process plus its burner, in % of one core.
    wait_until(lambda: (sample(topology, "root")["cpu_percent"] or 0) > 0, WAIT, "a CPU measurement above 0 at root")
    wait_until(lambda: sum(burner.cpu_times()[:2]) > 0, WAIT, "the burner to burn")
    # The tasks end: the burner stays (for the next task) and burns nothing more.
    wait_until(lambda: sample(topology, "root")["done"] == 4, WAIT, "the four tasks to end")
    assert burners(root) == [burner]

    def still():
        before = sum(burner.cpu_times()[:2])
        time.sleep(0.5)
        return sum(burner.cpu_times()[:2]) == before
    wait_until(lambda: still() and still(), WAIT, "the idle burner to stop using CPU")


def test_a_killed_burner_is_replaced_while_its_tasks_run(cluster_env):
    """The node notices on its own (no new task, no task ending): its housekeeping asks
    for the burner's pid every round, which restarts a dead burner with the busy slots."""
    path = cluster_env.topology("seed.toml", rebalance_interval=0)
    assert cluster_env.ctl("start", path).returncode == 0
    topology = load(path)
    root = cluster_env.record("seed")["nodes"]["root"]["pid"]
    with Operator(topology, timeout=30) as op:
        op.submit("root", 2, 600.0)
    (first,) = wait_until(lambda: burners(root), WAIT, "root's burner")
    first.kill()  # the burner of a node this test started, by pid
    (second,) = wait_until(lambda: [b for b in burners(root) if b.pid != first.pid], WAIT, "a new burner")
    assert cluster_env.gone(first.pid, first.create_time())  # the dead one reaped, no zombie
    wait_until(lambda: second.num_threads() == 3, WAIT, "main thread + 2 burning threads")
    state = sample(topology, "root")
    assert state["running"] == 2, state
    log = (cluster_env.home / "seed" / "root.log").read_text()
    assert f"burner pid {first.pid} died (exit -9) with 2 busy slots; starting a new one" in log, log


def test_the_burner_process_refuses_bad_input_and_ends_with_it(cluster_env):
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.burner", "--node", "solo"], input=b"two\n-1\n1025\n1\n0\n",
        env=cluster_env.env, capture_output=True, timeout=WAIT,
    )
    assert proc.returncode == 0
    errors = proc.stderr.decode().splitlines()
    assert errors == [f"burner of node solo: ignoring input {line!r}: want a slot count 0..1024"
                      for line in (b"two\n", b"-1\n", b"1025\n")], errors
