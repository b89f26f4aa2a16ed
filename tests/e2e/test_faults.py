"""Faults on real processes: the supervisor restarts a node that dies (with backoff, up
to FATAL), and a run directory that is moved away or damaged neither blinds ``ctl`` nor
orphans the cluster. Every check of "nothing is left" is made by pid."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time

import psutil
import pytest

from cluster_helpers import SEED_NODES, node_entry, squat
from polling import wait_until

pytestmark = pytest.mark.e2e

RESTART_WAIT = 30.0  # generous: the machine is shared, a node imports pyzmq on restart


def status_json(cluster_env, *args) -> tuple[int, dict]:
    result = cluster_env.ctl("status", *args, "--json")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def port_free(port: int) -> bool:
    try:
        with squat(port):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def always_crashing(cluster_env, node: str, **cluster):
    """A started seed cluster whose ``node`` crashes at every restart: SIGKILLed while
    the supervisor is SIGSTOPped, and its port taken (so every restart fails to bind)
    before the supervisor goes on. Yields the port; frees it on the way out."""
    topo = cluster_env.topology("seed.toml", rebalance_interval=0, **cluster)
    port = cluster_env.ports(topo)[node]
    assert cluster_env.ctl("start", topo).returncode == 0
    record = cluster_env.record("seed")
    supervisor = record["supervisor"]["pid"]
    victim = record["nodes"][node]["pid"]
    os.kill(supervisor, signal.SIGSTOP)
    stopped = True
    try:
        os.kill(victim, signal.SIGKILL)
        # a zombie until the supervisor reaps it; its port is free once its last thread
        # (ZeroMQ's I/O threads outlive the leader by a moment) has closed the socket
        wait_until(lambda: psutil.Process(victim).status() == psutil.STATUS_ZOMBIE, 10, f"{node} to die")
        wait_until(lambda: port_free(port), 10, f"{node}'s port {port} to be free")
        with squat(port):
            os.kill(supervisor, signal.SIGCONT)
            stopped = False
            yield port
    finally:
        if stopped:  # only while it is ours for sure: after a stop its pid may be reused
            os.kill(supervisor, signal.SIGCONT)


def pical_tasks(topo) -> tuple[int, dict]:
    """pical's running + queued tasks, and the cluster's books, from one detailed echo."""
    from daemon.core.tasks import account
    from daemon.operator import Operator
    from daemon.topology import load

    with Operator(load(topo), timeout=5) as op:
        snap = op.echo(detail=True)
    pical = next(n for n in snap["nodes"] if n["name"] == "pical")
    return pical["running"] + pical["queued"], account(snap["nodes"])


def test_sigkilled_node_comes_back_running_with_a_new_pid_its_queue_and_answers(cluster_env):
    topo = cluster_env.topology("seed.toml", rebalance_interval=0)
    assert cluster_env.ctl("start", topo).returncode == 0
    assert cluster_env.ctl("submit", "pical", "--tasks", "12", "--cost", "3600").returncode == 0
    assert pical_tasks(topo)[0] == 12
    before = node_entry(cluster_env, "pical")
    assert before["state"] == "RUNNING" and before["restarts"] == 0 and before["last_exit"] is None
    os.kill(before["pid"], signal.SIGKILL)

    after = wait_until(lambda: (e := node_entry(cluster_env, "pical")).get("state") == "RUNNING"
                       and e.get("pid") != before["pid"] and e, RESTART_WAIT, "pical to be restarted")
    assert after["restarts"] == 1 and after["last_exit"] == "killed by SIGKILL", after
    assert after["since"] >= before["since"]
    assert cluster_env.gone(before["pid"], before["create_time"]), "the killed node was not reaped"

    code, status = status_json(cluster_env)
    assert code == 0, status
    pical = next(n for n in status["nodes"] if n["name"] == "pical")
    assert pical["alive"] and pical["ping_ms"] is not None, pical
    assert (pical["state"], pical["restarts"], pical["last_exit"]) == ("RUNNING", 1, "killed by SIGKILL")
    text = cluster_env.ctl("status")
    assert text.returncode == 0 and "killed by SIGKILL" in text.stdout, text.stdout
    # through the restarted node's new sockets, at once: it said ready (RUNNING) only once
    # it joins every new wave, though its epoch runs ahead of its clock (daemon/core/node.py
    # node_epoch, ready_at)
    echo = cluster_env.ctl("echo", "--json")
    assert echo.returncode == 0, echo.stdout + echo.stderr
    tasks, books = pical_tasks(topo)  # its journal gave the new process its queue back
    assert tasks == 12 and books["balanced"] and books["submitted"] == 12, books
    submit = cluster_env.ctl("submit", "pical", "--tasks", "3", "--cost", "0.1")
    assert submit.returncode == 0, submit.stderr


def test_restart_never_leaves_a_dead_node_fatal_and_status_exits_1(cluster_env):
    topo = cluster_env.topology("seed.toml", rebalance_interval=0, restart="never")
    assert cluster_env.ctl("start", topo).returncode == 0
    victim = node_entry(cluster_env, "outwhirled")
    os.kill(victim["pid"], signal.SIGTERM)
    dead = wait_until(lambda: (e := node_entry(cluster_env, "outwhirled")).get("state") == "FATAL" and e,
                      RESTART_WAIT, "outwhirled to be FATAL")
    assert dead["restarts"] == 0 and dead["pid"] == victim["pid"] and dead["last_exit"] == "exit status 0"
    assert cluster_env.gone(victim["pid"], victim["create_time"])
    code, status = status_json(cluster_env)
    assert code == 1 and status["running"], status
    row = next(n for n in status["nodes"] if n["name"] == "outwhirled")
    assert (row["state"], row["alive"]) == ("FATAL", False)
    text = cluster_env.ctl("status")
    assert text.returncode == 1 and "node outwhirled is FATAL (last exit: exit status 0)" in text.stdout, text.stdout


def test_a_node_that_keeps_crashing_goes_fatal_after_n_crashes(cluster_env):
    with always_crashing(cluster_env, "pical", restart_max_crashes=3, restart_window=120) as port:
        fatal = wait_until(lambda: (e := node_entry(cluster_env, "pical")).get("state") == "FATAL" and e,
                           RESTART_WAIT, "pical to go FATAL")
        # crash 1: the SIGKILL; restarts 1 and 2 fail to bind (crashes 2 and 3): FATAL
        assert fatal["restarts"] == 2, fatal
        assert f"port {port}" in fatal["last_exit"] and "already in use" in fatal["last_exit"], fatal
        code, status = status_json(cluster_env)
        assert code == 1
        states = {n["name"]: n["state"] for n in status["nodes"]}
        assert states.pop("pical") == "FATAL" and set(states.values()) == {"RUNNING"}, states
        time.sleep(0.5)  # FATAL is final: no further start
        assert node_entry(cluster_env, "pical")["restarts"] == 2
        log = (cluster_env.home / "seed" / "supervisor.log").read_text()
        assert "3 crashes within 120 s: FATAL" in log, log[-2000:]
        assert "restart in 0.1 s" in log and "restart in 0.2 s" in log


def test_stop_during_backoff_starts_nothing_and_leaves_nothing(cluster_env):
    with always_crashing(cluster_env, "pical", restart_max_crashes=50, restart_backoff_max=30):
        wait_until(lambda: node_entry(cluster_env, "pical").get("restarts", 0) >= 2, RESTART_WAIT, "two restarts")
        code, status = status_json(cluster_env)
        pical = next(n for n in status["nodes"] if n["name"] == "pical")
        assert code == 1 and pical["state"] in ("BACKOFF", "STARTING"), status
        # the sixth crash waits 3.2 s: ample time to stop the cluster during that BACKOFF
        seen = wait_until(lambda: (e := node_entry(cluster_env, "pical")).get("state") == "BACKOFF"
                          and e["restarts"] >= 5 and e, RESTART_WAIT, "pical to back off after 5 restarts")
        stopped = cluster_env.ctl("stop")
        assert stopped.returncode == 0, stopped.stderr
    record = cluster_env.record("seed")
    assert record["state"] == "stopped"
    assert {n["state"] for n in record["nodes"].values()} == {"STOPPED"}, record["nodes"]
    assert record["nodes"]["pical"]["restarts"] == seen["restarts"], "a node in BACKOFF was started during the stop"
    assert not cluster_env.processes()
    time.sleep(1.0)  # a restart timer that survived the stop would fire by now
    assert not cluster_env.processes()


# --- the run directory: authoritative, not fragile ------------------------------------


def all_pids(cluster_env) -> list[tuple[int, float]]:
    record = cluster_env.record("seed")
    return [(record["supervisor"]["pid"], record["supervisor"]["create_time"])] + [
        (n["pid"], n["create_time"]) for n in record["nodes"].values()]


def assert_all_gone(cluster_env, pids) -> None:
    left = [pid for pid, started in pids if not cluster_env.gone(pid, started)]
    assert not left, f"still there (or zombies): {left}"
    assert not cluster_env.processes()


def test_run_dir_moved_away_is_reported_then_made_again_and_restarts_go_on(cluster_env, tmp_path):
    topo = cluster_env.topology("seed.toml", rebalance_interval=0)
    assert cluster_env.ctl("start", topo).returncode == 0
    pids = all_pids(cluster_env)
    supervisor = pids[0][0]
    run_dir = cluster_env.home / "seed"
    os.kill(supervisor, signal.SIGSTOP)  # hold it, to see what ctl says before it repairs
    try:
        shutil.move(run_dir, tmp_path / "moved")
        code, status = status_json(cluster_env, "-t", topo)
        assert code == 1 and status["state"] == "unrecorded", status
        assert "cluster.json is missing" in status["problem"]
        found = {(p["role"], p["name"]): p["pid"] for p in status["processes"]}
        assert found == {("supervisor", ""): supervisor,
                         **{("node", name): pid for name, (pid, _) in zip(SEED_NODES, pids[1:])}}, found
        text = cluster_env.ctl("status", "-t", topo)
        assert text.returncode == 1 and f"ctl stop -t {topo}" in text.stdout, text.stdout
        blind = cluster_env.ctl("status")  # no -t: nothing names the topology any more
        assert blind.returncode == 1 and "pass -t" in blind.stderr and "Traceback" not in blind.stderr
        refused = cluster_env.ctl("start", topo)
        assert refused.returncode == 1 and "already running without a usable record" in refused.stderr, refused.stderr
    finally:
        os.kill(supervisor, signal.SIGCONT)
    wait_until(lambda: (run_dir / "cluster.json").is_file() and (run_dir / "supervisor.pid").is_file(),
               10, "the supervisor to make its run directory again")
    code, status = status_json(cluster_env)
    assert code == 0 and status["supervisor"]["pid"] == supervisor, status
    victim = node_entry(cluster_env, "haywagon")
    os.kill(victim["pid"], signal.SIGKILL)  # the next death must not crash the supervisor
    wait_until(lambda: (e := node_entry(cluster_env, "haywagon")).get("state") == "RUNNING" and e["pid"] != victim["pid"],
               RESTART_WAIT, "haywagon to be restarted")
    assert psutil.Process(supervisor).status() != psutil.STATUS_ZOMBIE
    assert "was gone (moved or removed): made it again" in (run_dir / "supervisor.log").read_text()
    assert cluster_env.ctl("stop").returncode == 0
    assert_all_gone(cluster_env, pids)


@pytest.mark.parametrize("per_process", [1, 3])
def test_run_dir_removed_under_a_stopped_supervisor_is_stopped_by_its_ports(cluster_env, per_process):
    """With 3 nodes a process, each process holds three ports and names three nodes on
    its command line (daemon/orphans.py ``served_nodes``): every one is found."""
    topo = cluster_env.topology("seed.toml", rebalance_interval=0, nodes_per_process=per_process)
    assert cluster_env.ctl("start", topo).returncode == 0
    pids = all_pids(cluster_env)
    assert len({pid for pid, _ in pids}) == 1 + -(-len(SEED_NODES) // per_process)
    os.kill(pids[0][0], signal.SIGSTOP)  # it cannot repair anything: ctl stop must cope alone
    shutil.rmtree(cluster_env.home / "seed")
    blind = cluster_env.ctl("stop")
    assert blind.returncode == 1 and "ctl stop -t" in blind.stderr, blind.stdout + blind.stderr
    assert all(not cluster_env.gone(pid, started) for pid, started in pids), "ctl stop without -t stopped something"
    stopped = cluster_env.ctl("stop", "-t", topo)  # SIGTERM and SIGCONT to the supervisor it found
    assert stopped.returncode == 0, stopped.stderr
    assert "found by the ports of its topology" in stopped.stdout, stopped.stdout
    assert "stopped cluster seed" in stopped.stdout
    assert_all_gone(cluster_env, pids)


@pytest.mark.parametrize("text, problem", [
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"cluster": "seed", "nodes": ["root"]}', "field 'nodes' must be an object, got list"),
    ('{"supervisor": {"pid": "12"}, "nodes": {}}', "supervisor: pid must be a positive integer"),
    ("{not json", "cannot read the cluster record"),
])
def test_damaged_record_gives_a_message_and_a_way_to_stop(cluster_env, text, problem):
    topo = cluster_env.topology("seed.toml", rebalance_interval=0)
    assert cluster_env.ctl("start", topo).returncode == 0
    pids = all_pids(cluster_env)
    (cluster_env.home / "seed" / "cluster.json").write_text(text)
    code, status = status_json(cluster_env, "-t", topo)
    assert code == 1 and status["state"] == "unrecorded" and problem in status["problem"], status
    assert len(status["processes"]) == 9, status["processes"]  # the supervisor (pid file) and 8 nodes
    blind = cluster_env.ctl("status")
    assert blind.returncode == 1 and problem in blind.stderr and "pass -t" in blind.stderr, blind.stderr
    assert "Traceback" not in blind.stderr
    for command in (("echo", "-t", topo), ("top", "--once", "-t", topo)):
        result = cluster_env.ctl(*command)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (command, result.stderr)
    stopped = cluster_env.ctl("stop", "-t", topo)
    assert stopped.returncode == 0 and "had no usable record" in stopped.stdout, stopped.stdout + stopped.stderr
    assert_all_gone(cluster_env, pids)


def test_garbage_pid_file_falls_back_on_the_record_and_is_written_again(cluster_env):
    topo = cluster_env.topology("seed.toml", rebalance_interval=0)
    assert cluster_env.ctl("start", topo).returncode == 0
    pids = all_pids(cluster_env)
    pid_file = cluster_env.home / "seed" / "supervisor.pid"
    pid_file.write_text("garbage\n")
    code, status = status_json(cluster_env)
    assert code == 0 and status["supervisor"]["pid"] == pids[0][0], status
    wait_until(lambda: pid_file.read_text().strip() == str(pids[0][0]), 10, "the supervisor to write its pid file again")
    assert cluster_env.ctl("stop").returncode == 0
    assert_all_gone(cluster_env, pids)


# --- nothing blocks, nothing is dropped -----------------------------------------------


def test_a_queue_longer_than_a_sample_lists_is_summarised_and_balanced_round_after_round(cluster_env):
    from daemon.core.node import QUEUE_DETAIL_LIMIT
    from daemon.core.tasks import account
    from daemon.operator import Operator
    from daemon.topology import load

    topo = cluster_env.topology("seed.toml", rebalance_interval=0, task_time=3600.0)
    assert cluster_env.ctl("start", topo).returncode == 0
    submitted = cluster_env.ctl("submit", "subserviate", "--tasks", "20000", timeout=120)
    assert submitted.returncode == 0, submitted.stderr
    with Operator(load(topo), timeout=10) as op:
        snap = op.echo(detail=True)
    sub = next(n for n in snap["nodes"] if n["name"] == "subserviate")
    # past the listing limit a sample summarises its queue in runs (daemon/core/tasks.py)
    assert sub["queued"] > QUEUE_DETAIL_LIMIT and "queued_tasks" not in sub
    assert sum(count for _, count in sub["queue_runs"]) == sub["queued"]
    assert account(snap["nodes"])["balanced"]

    result = cluster_env.ctl("rebalance", "--rounds", "3", "--timeout", "20", "--json", timeout=180)
    assert result.returncode == 0, result.stderr
    rounds = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["round"] for r in rounds] == [1, 2, 3]  # three rounds without --every
    assert rounds[0]["moved"] > 0 and all(m["count"] > 0 for m in rounds[0]["moves"]), rounds[0]["moves"]
    with Operator(load(topo), timeout=10) as op:
        books = account(op.echo(detail=True)["nodes"])
    assert books["balanced"] and books["submitted"] >= 20000, books


def test_every_keeps_going_after_a_round_that_fails(cluster_env):
    topo = cluster_env.topology("seed.toml", rebalance_interval=0)
    assert cluster_env.ctl("start", topo).returncode == 0
    stuck = node_entry(cluster_env, "pical")["pid"]
    os.kill(stuck, signal.SIGSTOP)  # alive but silent: waves through it time out
    try:
        result = cluster_env.ctl("rebalance", "--every", "0.2", "--rounds", "2", "--timeout", "1", "--json")
    finally:
        os.kill(stuck, signal.SIGCONT)
    rounds = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["round"] for r in rounds] == [1, 2], result.stdout + result.stderr
    failed = [r for r in rounds if "error" in r]
    assert result.returncode == (1 if failed else 0)
    assert all("pical" in r["error"] for r in failed), failed
    text = cluster_env.ctl("rebalance", "--rounds", "2", "--timeout", "5")
    assert text.returncode == 0 and "round 1:" in text.stdout and "round 2:" in text.stdout, text.stdout


KILLS = 20  # kill -> RUNNING -> echo rounds


def test_a_node_called_running_again_answers_the_next_echo_with_its_queue(cluster_env):
    """RUNNING means reachable: 20 times, pical (30 queued and running tasks) is killed;
    as soon as its record (``cluster.json``, what ``ctl status`` and ``ctl top`` read)
    says RUNNING with a new pid, an echo wave begun at once (in this process, within
    milliseconds) must find it with its 30 tasks; then ``ctl status --json`` says RUNNING
    and ``ctl echo --json`` finds it too. A restarted node says ready only once its clock
    is past its epoch plus the clock-offset bound (daemon/core/node.py ``ready_at``), so
    no wave begun after that is older than the node. Without that wait (the ready line
    sent once bound) the echo begun at once missed pical in 20 of the 20 rounds."""
    from daemon.operator import Operator
    from daemon.topology import load

    topo = cluster_env.topology("seed.toml", rebalance_interval=0, restart_backoff_max=0.1,
                                restart_max_crashes=KILLS + 5, restart_window=600)
    assert cluster_env.ctl("start", topo).returncode == 0
    assert cluster_env.ctl("submit", "pical", "--tasks", "30", "--cost", "3600").returncode == 0
    topology = load(topo)

    def pical_in(snap) -> bool:
        rows = [n for n in snap["nodes"] if n["name"] == "pical"]
        return not snap["missing"] and len(rows) == 1 and rows[0]["running"] + rows[0]["queued"] == 30

    answered = []  # (the echo at once, ctl echo) per kill
    for kill in range(KILLS):
        victim = node_entry(cluster_env, "pical")
        assert victim.get("state") == "RUNNING", victim
        os.kill(victim["pid"], signal.SIGKILL)
        wait_until(lambda: (e := node_entry(cluster_env, "pical")).get("state") == "RUNNING"
                   and e.get("pid") != victim["pid"], RESTART_WAIT, f"pical to be RUNNING again after kill {kill + 1}")
        with Operator(topology, timeout=5) as op:
            at_once = pical_in(op.echo())
        code, status = status_json(cluster_env)
        row = next(n for n in status["nodes"] if n["name"] == "pical")
        assert code == 0 and row["state"] == "RUNNING" and row["pid"] != victim["pid"], status
        echo = cluster_env.ctl("echo", "--json")
        assert "Traceback" not in echo.stderr, echo.stderr
        answered.append((at_once, echo.returncode == 0 and pical_in(json.loads(echo.stdout))))
        wait_until(lambda: cluster_env.gone(victim["pid"], victim["create_time"]), RESTART_WAIT,
                   "the killed pical to be reaped")
    both = sum(a and b for a, b in answered)
    assert both == KILLS, f"pical answered both echoes right after RUNNING {both} of {KILLS} times: {answered}"
