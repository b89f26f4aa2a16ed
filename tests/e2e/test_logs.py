"""``ctl logs`` on real clusters: a balancing round's moves at both ends, a node killed
and restarted (the supervisor's words and the new incarnation's in the node's own log),
``-f`` following new lines until Ctrl-C, a cluster stopped and its logs still there,
and debug-level wave lines. Every process is stopped by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
from cluster_helpers import as_from_a_terminal
from polling import WAIT, wait_until

pytestmark = pytest.mark.e2e


def log_lines(cluster_env, topo, *args) -> list[str]:
    r = cluster_env.ctl("logs", *args, "-n", "1000", "-t", topo)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_a_rebalance_and_a_kill_are_in_the_nodes_logs_and_stay_after_the_stop(cluster_env):
    topo = cluster_env.start(nodes={"root": {"tasks": 0}}, task_time=60.0)
    assert cluster_env.ctl("submit", "root", "--tasks", "16", "--cost", "60", "-t", topo).returncode == 0
    report = cluster_env.ctl_json("rebalance", "-t", topo)
    moves = [m for m in report["moves"] if m["count"]]
    assert moves, report["moves"]
    root = log_lines(cluster_env, topo, "root")
    for k, move in enumerate(report["moves"]):
        if not move["count"]:
            continue
        move_id = f"{report['round_id']}-{k}"
        out = [line for line in root if f"INFO move {move_id}: " in line]
        assert len(out) == 1 and out[0].endswith(
            f": {move['count']} tasks out to {move['to']}" if move["count"] > 1 else f": 1 task out to {move['to']}"
        ), root
        into = wait_until(
            lambda: [line for line in log_lines(cluster_env, topo, move["to"]) if f"INFO move {move_id}: " in line],
            WAIT,
            f"{move['to']}'s line of {move_id}",
        )
        assert into[0].endswith("tasks in from root") or into[0].endswith("task in from root"), into
    assert not [line for line in root if " DEBUG " in line]  # log_level "info", the default

    victim = cluster_env.record("seed")["nodes"]["pical"]
    os.kill(victim["pid"], signal.SIGKILL)  # a node of this test's cluster, by pid
    wait_until(
        lambda: (n := cluster_env.record("seed")["nodes"]["pical"])["restarts"] == 1 and n["state"] == "RUNNING",
        WAIT,
        "pical restarted and RUNNING",
    )
    pical = log_lines(cluster_env, topo, "pical")
    died = [
        k
        for k, line in enumerate(pical)
        if "supervisor[" in line
        and f"ERROR node pical (pid {victim['pid']}) exited: killed by SIGKILL; restart in " in line
    ]
    assert len(died) == 1, pical
    after = pical[died[0] + 1 :]
    assert any("node pical[" in line and "INFO restarted: recovered from " in line for line in after), pical
    assert any("INFO node pical: ready at " in line and "restart 1)" in line for line in after), pical
    supervisor = log_lines(cluster_env, topo, "--supervisor")
    assert any(f"node pical (pid {victim['pid']}) exited: killed by SIGKILL" in line for line in supervisor)

    assert cluster_env.ctl("stop", "-t", topo).returncode == 0
    left = cluster_env.ctl("logs", "pical", "-n", "3", "-t", topo)
    assert left.returncode == 0 and len(left.stdout.splitlines()) == 3, left.stdout + left.stderr
    assert "INFO node pical (pid " in left.stdout and "exit status 0" in left.stdout, left.stdout


def test_follow_prints_new_lines_until_ctrl_c(cluster_env):
    topo = cluster_env.start(task_time=60.0)
    follower = subprocess.Popen(
        [sys.executable, "-m", "ctl", "logs", "root", "-f", "-n", "0", "-t", str(topo)],
        env=cluster_env.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=as_from_a_terminal,
    )
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(follower.stdout), daemon=True)
    reader.start()
    try:
        cluster_env.processes()  # the follower is ours: the teardown checks it is gone
        # nothing old is printed (-n 0); then a move out of root is a new line
        assert cluster_env.ctl("submit", "root", "--tasks", "12", "--cost", "60", "-t", topo).returncode == 0
        wait_until(lambda: cluster_env.ctl_json("rebalance", "-t", topo)["moved"], WAIT, "a round that moves tasks")
        wait_until(
            lambda: any(" tasks out to " in line or " task out to " in line for line in seen),
            WAIT,
            "ctl logs -f to print root's move",
        )
        assert all(" INFO " in line or " WARNING " in line for line in seen), seen
        assert not any(" started" in line for line in seen), seen  # not the old lines
        follower.send_signal(signal.SIGINT)  # Ctrl-C, by pid
        assert follower.wait(timeout=WAIT) == 0, follower.stderr.read()
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(timeout=WAIT)
        reader.join(timeout=WAIT)
    assert cluster_env.gone(follower.pid)


def test_debug_level_says_each_wave_a_node_took_part_in(cluster_env):
    topo = cluster_env.start(log_level="debug", nodes_per_process=2)
    echo = cluster_env.ctl_json("echo", "-t", topo)
    wave = echo["wave"]
    finn = cluster_env.ctl_json("finn", "-t", topo, "--tasks", "1")
    for node in ("root", "affixed", "outwhirled"):  # a process's first node and its second
        lines = wait_until(
            lambda: [line for line in log_lines(cluster_env, topo, node) if f"wave {wave}: " in line],
            WAIT,
            f"{node}'s line of {wave}",
        )
        assert len(lines) == 1 and " DEBUG " in lines[0], lines
        decided = [
            line
            for line in log_lines(cluster_env, topo, node)
            if f"wave {finn['wave']}: decided (finn), 1 task enqueued" in line
        ]
        assert len(decided) == 1, node
    (line,) = [line for line in log_lines(cluster_env, topo, "root") if f"wave {wave}: " in line]
    assert "decided (echo)" in line
