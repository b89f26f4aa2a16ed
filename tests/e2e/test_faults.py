"""Faults on real processes: the supervisor restarts a node that dies (with backoff, up
to FATAL), and a run directory that is moved away or damaged neither blinds ``ctl`` nor
orphans the cluster. Every check of "nothing is left" is made by pid."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import psutil
import pytest

from test_lifecycle import squat, wait_until

pytestmark = pytest.mark.e2e

RESTART_WAIT = 30.0  # generous: the machine is shared, a node imports pyzmq on restart


def node_entry(cluster_env, name: str, cluster: str = "seed") -> dict:
    try:
        return cluster_env.record(cluster)["nodes"][name]
    except (OSError, ValueError, KeyError):
        return {}  # between the supervisor's atomic writes there is always a whole file


def status_json(cluster_env, *args) -> tuple[int, dict]:
    result = cluster_env.ctl("status", *args, "--json")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def kill_behind_a_stopped_supervisor(cluster_env, node: str, port: int):
    """SIGKILL ``node`` while its supervisor is SIGSTOPped and take its port, so that every
    restart of it fails to bind; returns the squatting context (enter it before SIGCONT)."""
    record = cluster_env.record("seed")
    supervisor = record["supervisor"]["pid"]
    victim = record["nodes"][node]["pid"]
    os.kill(supervisor, signal.SIGSTOP)
    try:
        os.kill(victim, signal.SIGKILL)
        # a zombie until the supervisor reaps it, but its sockets are closed already
        wait_until(lambda: psutil.Process(victim).status() == psutil.STATUS_ZOMBIE, 10, f"{node} to die")
        hold = squat(port)
        hold.__enter__()
    finally:
        os.kill(supervisor, signal.SIGCONT)
    return hold


def test_sigkilled_node_comes_back_running_with_a_new_pid_and_answers(cluster_env):
    topo = cluster_env.topology("seed.toml", rebalance_interval=0)
    assert cluster_env.ctl("start", topo).returncode == 0
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
    echo = cluster_env.ctl("echo", "--json")  # through the restarted node's new sockets
    assert echo.returncode == 0, echo.stderr
    assert {n["name"] for n in json.loads(echo.stdout)["nodes"]} >= {"pical"}
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
    topo = cluster_env.topology("seed.toml", rebalance_interval=0, restart_max_crashes=3, restart_window=120)
    port = cluster_env.ports(topo)["pical"]
    assert cluster_env.ctl("start", topo).returncode == 0
    hold = kill_behind_a_stopped_supervisor(cluster_env, "pical", port)
    try:
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
    finally:
        hold.__exit__(None, None, None)


def test_stop_during_backoff_starts_nothing_and_leaves_nothing(cluster_env):
    topo = cluster_env.topology("seed.toml", rebalance_interval=0, restart_max_crashes=50, restart_backoff_max=30)
    port = cluster_env.ports(topo)["pical"]
    assert cluster_env.ctl("start", topo).returncode == 0
    hold = kill_behind_a_stopped_supervisor(cluster_env, "pical", port)
    try:
        wait_until(lambda: node_entry(cluster_env, "pical").get("restarts", 0) >= 2, RESTART_WAIT, "two restarts")
        code, status = status_json(cluster_env)
        pical = next(n for n in status["nodes"] if n["name"] == "pical")
        assert code == 1 and pical["state"] in ("BACKOFF", "STARTING"), status
        # the sixth crash waits 3.2 s: ample time to stop the cluster during that BACKOFF
        seen = wait_until(lambda: (e := node_entry(cluster_env, "pical")).get("state") == "BACKOFF"
                          and e["restarts"] >= 5 and e, RESTART_WAIT, "pical to back off after 5 restarts")
        stopped = cluster_env.ctl("stop")
        assert stopped.returncode == 0, stopped.stderr
    finally:
        hold.__exit__(None, None, None)
    record = cluster_env.record("seed")
    assert record["state"] == "stopped"
    assert {n["state"] for n in record["nodes"].values()} == {"STOPPED"}, record["nodes"]
    assert record["nodes"]["pical"]["restarts"] == seen["restarts"], "a node in BACKOFF was started during the stop"
    assert not cluster_env.processes()
    time.sleep(1.0)  # a restart timer that survived the stop would fire by now
    assert not cluster_env.processes()
