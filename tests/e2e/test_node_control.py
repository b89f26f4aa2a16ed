"""One node at a time, with real processes: ``ctl restart|stop|start NODE`` through the
supervisor (daemon/cluster/control.py), and ``ctl status --watch``.

A restarted node comes back from its journal with its queued tasks; a stopped node is
STOPPED (not restarted by the policy, shown as stopped), its neighbours answer a wave
that names it missing, and ``ctl start NODE`` brings it back; a process serving several
nodes is refused unless all of them are named. Every cluster is stopped by the
``cluster_env`` teardown (``ctl stop -t``, then every process of the test by pid); the
``--watch`` process is signalled by its pid.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from cluster_helpers import as_from_a_terminal
from polling import WAIT, wait_until

pytestmark = pytest.mark.e2e

LONG = 600  # seconds a test task holds its slot: none finishes during a test


def by_name(snapshot: dict) -> dict:
    return {n["name"]: n for n in snapshot["nodes"]}


def echo(cluster_env, topo) -> tuple[int, dict]:
    r = cluster_env.ctl("echo", "-t", topo, "--json")
    return r.returncode, json.loads(r.stdout)


def test_a_restarted_node_keeps_its_queued_tasks_and_its_neighbours_keep_theirs(cluster_env):
    topo = cluster_env.start("seed.toml")
    cluster_env.ctl_json("submit", "subserviate", "--tasks", 10, "--cost", LONG, "-t", topo)
    before = by_name(cluster_env.ctl_json("echo", "-t", topo))
    assert before["subserviate"]["running"] + before["subserviate"]["queued"] == 10
    assert before["subserviate"]["queued"] == 8  # two cpus: two run, eight wait
    record = cluster_env.record("seed")
    old = {name: node["pid"] for name, node in record["nodes"].items()}

    out = cluster_env.ctl_json("restart", "subserviate", "-t", topo)

    assert out["ok"] and out["action"] == "restart"
    [row] = out["nodes"]
    assert row["name"] == "subserviate" and row["state"] == "RUNNING" and row["was"] == "RUNNING"
    assert row["pid"] != old["subserviate"] and row["restarts"] == 1
    assert cluster_env.gone(old["subserviate"])
    after = cluster_env.ctl_json("echo", "-t", topo)  # exit 0: every node answers
    assert not after["missing"]
    node = by_name(after)["subserviate"]
    assert node["running"] + node["queued"] == 10  # from its journal: no task lost
    record = cluster_env.record("seed")
    assert {n: e["pid"] for n, e in record["nodes"].items() if n != "subserviate"} == {
        n: p for n, p in old.items() if n != "subserviate"}  # the neighbours were left alone
    assert record["nodes"]["subserviate"]["state"] == "RUNNING"


def test_a_stopped_node_stays_stopped_is_missing_from_waves_and_starts_again(cluster_env):
    topo = cluster_env.start("seed.toml")
    cluster_env.ctl_json("submit", "haywagon", "--tasks", 9, "--cost", LONG, "-t", topo)
    old = cluster_env.record("seed")["nodes"]["haywagon"]["pid"]

    out = cluster_env.ctl_json("stop", "haywagon", "-t", topo)

    assert out["ok"] and [(r["name"], r["state"]) for r in out["nodes"]] == [("haywagon", "STOPPED")]
    assert cluster_env.gone(old)
    time.sleep(1.0)  # the restart policy's first backoff is 0.1 s: it would have acted by now
    entry = cluster_env.record("seed")["nodes"]["haywagon"]
    assert entry["state"] == "STOPPED" and entry["pid"] == old and cluster_env.gone(old)
    code, snap = echo(cluster_env, topo)
    assert code == 1 and snap["missing"] == ["haywagon"]  # the others answer, naming it missing
    assert len(snap["nodes"]) == 7
    status = cluster_env.ctl("status", "-t", topo)
    assert "haywagon is STOPPED: stopped by the operator" in status.stdout, status.stdout
    top = cluster_env.ctl("top", "-t", topo, "--once", "--ascii", "--width", 160)
    assert "STOPPED by the operator" in top.stdout, top.stdout
    logs = cluster_env.ctl("logs", "haywagon", "-n", 50, "-t", topo)
    assert "node haywagon: operator stop, RUNNING -> STOPPING" in logs.stdout, logs.stdout + logs.stderr
    assert "(stopped by the operator)" in logs.stdout

    started = cluster_env.ctl_json("start", "haywagon", "-t", topo)

    assert started["ok"] and started["nodes"][0]["state"] == "RUNNING" and started["nodes"][0]["was"] == "STOPPED"
    code, snap = echo(cluster_env, topo)
    assert code == 0 and not snap["missing"]
    node = by_name(snap)["haywagon"]
    assert node["running"] + node["queued"] == 9  # its journal was kept while it was stopped


def test_unknown_nodes_are_named_with_the_clusters_nodes(cluster_env):
    topo = cluster_env.start("seed.toml")
    for verb in ("restart", "stop", "start"):
        r = cluster_env.ctl(verb, "haywagon", "nosuch", "-t", topo)
        assert r.returncode == 1, (verb, r.stdout, r.stderr)
        assert "no node nosuch in cluster seed (its nodes: root, affixed, haywagon" in r.stderr, r.stderr
    record = cluster_env.record("seed")
    assert all(e["state"] == "RUNNING" for e in record["nodes"].values())  # refused before anything was done


def test_a_process_of_several_nodes_is_stopped_only_when_all_are_named(cluster_env):
    topo = cluster_env.start("seed.toml", nodes_per_process=3)
    r = cluster_env.ctl("stop", "root", "-t", topo)
    assert r.returncode == 1
    assert "node root shares its process with affixed, haywagon" in r.stderr, r.stderr
    assert "`ctl stop root affixed haywagon`" in r.stderr
    out = cluster_env.ctl_json("stop", "root", "affixed", "haywagon", "-t", topo)
    assert [(n["name"], n["state"]) for n in out["nodes"]] == [
        ("root", "STOPPED"), ("affixed", "STOPPED"), ("haywagon", "STOPPED")]
    out = cluster_env.ctl_json("restart", "root", "affixed", "haywagon", "-t", topo)
    assert {n["state"] for n in out["nodes"]} == {"RUNNING"} and len({n["pid"] for n in out["nodes"]}) == 1


def test_start_with_a_topology_still_starts_a_cluster_and_with_node_names_needs_one_running(cluster_env):
    r = cluster_env.ctl("start", "haywagon", "root")
    assert r.returncode == 2 and "no cluster runs whose nodes these could be" in r.stderr, r.stderr
    topo = cluster_env.start("seed.toml")  # one argument, a file: the cluster
    r = cluster_env.ctl("start", "root", "-t", topo)
    assert r.returncode == 0 and "node root: RUNNING" in r.stdout  # already running: left as it is
    r = cluster_env.ctl("start", "root", "--record", "-t", topo)
    assert r.returncode == 2 and "--record belong to starting a cluster" in r.stderr


def test_status_watch_draws_frames_until_sigint_and_exits_0(cluster_env):
    topo = cluster_env.start("seed.toml")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctl", "status", "--watch", "--interval", "0.2", "-t", str(topo)],
        env=cluster_env.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=as_from_a_terminal)
    try:
        frames = 0
        deadline = time.monotonic() + WAIT
        lines = []
        while frames < 2 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            frames += line.startswith("every 0.2 s, Ctrl-C ends: ctl status")
        assert frames >= 2, "".join(lines) + proc.stderr.read()
        assert any(line.startswith("haywagon") for line in lines)
        proc.send_signal(signal.SIGINT)  # by pid
        assert proc.wait(WAIT) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()  # by pid
            proc.wait(WAIT)
        proc.stdout.close()
        proc.stderr.close()
    wait_until(lambda: proc.poll() is not None, WAIT, "the watch to end")
