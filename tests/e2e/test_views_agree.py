"""Every pair of views agrees: what ``ctl status``, ``ctl echo`` and ``ctl top`` show of one
real cluster, what ``cluster.json`` records and what the processes are, and the books
(submitted = done + queued + running + in flight), after each fault injected from
outside: a node killed for good and killed to be restarted, a node stopped (SIGSTOP)
and continued, the supervisor killed (a stale run directory), a stop and a restart.
TESTING.md, "Views that must agree", lists the pairs.

Each look runs the three commands one after the other, so a fault is first let settle
(a state the cluster keeps: a FATAL node, a node held stopped, a dead supervisor), or the
looks are repeated until the cluster is whole again; the views are then compared
exactly. Tasks cost an hour, so none ends between two commands of a look."""

from __future__ import annotations

import json
import os
import re
import signal
from dataclasses import dataclass

import pytest

from polling import WAIT, wait_until

pytestmark = pytest.mark.e2e

SEED = ["root", "affixed", "haywagon", "tubularia", "preindemnifying", "subserviate", "pical", "outwhirled"]
HOUR = 3600
WAVE = "3"  # seconds: each wave's deadline while a node is silent


@dataclass
class Look:
    status_rc: int
    status: dict
    status_text: str
    echo_rc: int
    echo: dict | None  # None: the wave did not come back at all
    top_rc: int
    top: str
    record: dict
    processes: dict  # node name -> pids of live daemon processes serving it


def look(env, path) -> Look:
    """The cluster through every view, one after the other."""
    status = env.ctl("status", "-t", path, "--json")
    text = env.ctl("status", "-t", path)
    echo = env.ctl("echo", "-t", path, "--json", "--timeout", WAVE)
    top = env.ctl("top", "-t", path, "--once", "--ascii", "--width", "140", "--timeout", WAVE)
    for r in (status, text, echo, top):
        assert "Traceback" not in r.stderr, r.stderr
    return Look(status.returncode, json.loads(status.stdout), text.stdout + text.stderr, echo.returncode,
                json.loads(echo.stdout) if echo.stdout.strip() else None, top.returncode, top.stdout + top.stderr,
                env.record("seed"), node_processes(env))


def node_processes(env) -> dict[str, set[int]]:
    """Live node daemons of this test, by the ``--node NAME`` of their command lines
    (burners are not daemons)."""
    import psutil

    found: dict[str, set[int]] = {}
    for proc in env.processes():
        try:
            args = proc.cmdline()
            if proc.status() == psutil.STATUS_ZOMBIE or "daemon.burner" in args:
                continue
        except psutil.Error:
            continue
        for i, arg in enumerate(args[:-1]):
            if arg == "--node":
                found.setdefault(args[i + 1], set()).add(proc.pid)
    return found


def disagreements(v: Look) -> list[str]:
    """Every pair of views that disagrees, said; [] when all agree."""
    problems = []
    rows = {row["name"]: row for row in v.status["nodes"]}
    healthy = {n for n, row in rows.items() if row["state"] == "RUNNING" and row["alive"] and row["ping_ms"] is not None}
    answered = {n["name"] for n in v.echo["nodes"]} if v.echo else set()
    whole = set(SEED)
    # status vs echo: the nodes status calls healthy are those the wave heard from
    if healthy != answered:
        problems.append(f"status healthy {sorted(healthy)} but echo answered {sorted(answered)}")
    if v.echo and sorted(v.echo["missing"]) != sorted(whole - answered):
        problems.append(f"echo's missing {v.echo['missing']} are not the nodes it lacks")
    for name, code, ok in (("status", v.status_rc, healthy == whole), ("echo", v.echo_rc, answered == whole),
                           ("top", v.top_rc, answered == whole)):
        if (code == 0) != ok:
            problems.append(f"ctl {name} exits {code} with {len(answered)}/{len(whole)} nodes answering")
    # status text vs status JSON: never "N/N nodes alive" alone while a node is silent
    for name in sorted(n for n, row in rows.items() if row["alive"] and row["ping_ms"] is None):
        if f"node {name} is alive but not answering" not in v.status_text:
            problems.append(f"status text does not say {name} is alive but not answering")
    # top vs echo: nodes up, and the tasks of the nodes that answered
    up = re.search(r"(\d+)/(\d+) nodes up", v.top)
    if not up or (int(up[1]), int(up[2])) != (len(answered), len(whole)):
        problems.append(f"top says {up and up[0]!r}, echo heard {len(answered)}/{len(whole)}")
    if v.echo:
        sums = [sum(n[k] for n in v.echo["nodes"]) for k in ("running", "queued", "done")]
        tasks = re.search(r"(\d+) running \S (\d+) queued \S (\d+) done", v.top)
        if not tasks or [int(x) for x in tasks.groups()] != sums:
            problems.append(f"top's tasks {tasks and tasks[0]!r}, echo's running/queued/done {sums}")
    # cluster.json vs the processes, and vs status
    for name, entry in v.record["nodes"].items():
        live = v.processes.get(name, set())
        if entry["state"] in ("RUNNING", "STARTING") and entry["pid"] not in live:
            problems.append(f"record: {name} {entry['state']} pid {entry['pid']}, live daemons {sorted(live)}")
        if entry["state"] in ("FATAL", "BACKOFF", "STOPPED") and live:
            problems.append(f"record: {name} {entry['state']}, yet daemons {sorted(live)} serve it")
        if name in rows and rows[name]["alive"] != (entry["pid"] in live):
            problems.append(f"status: {name} alive={rows[name]['alive']}, processes {sorted(live)}")
    return problems


def books(env, path) -> dict:
    """The accounting rule over one complete echo (daemon/core/tasks.py account)."""
    from daemon.core.tasks import account
    from daemon.operator import Operator
    from daemon.topology import load

    with Operator(load(path), timeout=5.0) as op:
        snap = op.echo()
    assert not snap["missing"], snap["missing"]
    return account(snap["nodes"])


def agreeing(env, path, expect) -> Look:
    """Look until the views agree and ``expect(look)`` holds; fail naming the last
    disagreement (a cluster coming back passes through states the looks straddle)."""
    last = []

    def settled():
        v = look(env, path)
        last[:] = disagreements(v) or ([] if expect(v) else ["not yet the expected state"])
        return v if not last else None

    try:
        return wait_until(settled, WAIT, "the views to agree")
    except pytest.fail.Exception:
        pytest.fail(f"the views never agreed: {last}", pytrace=False)


def whole(v: Look) -> bool:
    return v.status_rc == 0 and v.echo_rc == 0 and v.top_rc == 0


def submit(env, path, node, tasks) -> int:
    r = env.ctl("submit", node, "--tasks", tasks, "--cost", HOUR, "-t", path, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["tasks"]


def start(env, **cluster) -> tuple:
    path = env.start(task_time=HOUR, **cluster)
    submitted = submit(env, path, "subserviate", 10) + submit(env, path, "pical", 12)
    return path, submitted


# --- the views ------------------------------------------------------------------------------


def test_a_healthy_cluster_and_its_last_round_and_wave_whoever_started_them(cluster_env):
    """Balancing and Finn started by other processes (`ctl rebalance`, `ctl finn`): a
    fresh `ctl top`, which started neither, shows both as the nodes report them."""
    path, submitted = start(cluster_env)
    v = agreeing(cluster_env, path, whole)
    assert "balance: no round yet" in v.top and "finn: no wave yet" in v.top, v.top
    moved = json.loads(cluster_env.ctl("rebalance", "-t", path, "--json").stdout)
    assert moved["moved"] > 0, moved
    finn = json.loads(cluster_env.ctl("finn", "--tasks", "1", "--cost", HOUR, "-t", path, "--json").stdout)
    assert finn["undecided"] == [], finn
    v = agreeing(cluster_env, path, whole)
    line = next(line for line in v.top.splitlines() if line.startswith("balance: "))
    assert f"balance: {len(moved['moves'])} moves, {moved['moved']} tasks," in line, line
    assert f"finn: 8/8 decided, {finn['messages']} msgs, {finn['enqueued']} tasks," in line, line
    totals = books(cluster_env, path)
    assert totals["balanced"] and totals["submitted"] == submitted + finn["enqueued"], totals


def test_a_node_killed_for_good_is_missing_from_every_view(cluster_env):
    path, _ = start(cluster_env, restart="never")
    pical = cluster_env.record("seed")["nodes"]["pical"]
    os.kill(pical["pid"], signal.SIGKILL)
    wait_until(lambda: cluster_env.record("seed")["nodes"]["pical"]["state"] == "FATAL", WAIT, "pical FATAL")
    v = look(cluster_env, path)
    assert not disagreements(v), disagreements(v)
    assert v.echo["missing"] == ["pical"] and "7/8 nodes up" in v.top
    assert "node pical is FATAL (last exit: killed by SIGKILL)" in v.status_text, v.status_text


def test_a_node_killed_and_restarted_is_back_in_every_view_with_its_tasks(cluster_env):
    """Its queue and what it tells of the last Finn wave come back from its journal:
    `ctl top` still counts it among the nodes that decided (daemon/core/journal.py Told)."""
    path, submitted = start(cluster_env)
    finn = json.loads(cluster_env.ctl("finn", "--tasks", "1", "--cost", HOUR, "-t", path, "--json").stdout)
    assert finn["undecided"] == [], finn
    pical = cluster_env.record("seed")["nodes"]["pical"]
    os.kill(pical["pid"], signal.SIGKILL)
    v = agreeing(cluster_env, path, lambda v: whole(v) and v.record["nodes"]["pical"]["pid"] != pical["pid"])
    back = next(n for n in v.echo["nodes"] if n["name"] == "pical")
    assert back["running"] + back["queued"] == 12 + 1, back  # from its journal
    assert f"finn: 8/8 decided, {finn['messages']} msgs, 8 tasks," in v.top, v.top
    totals = books(cluster_env, path)
    assert totals["balanced"] and totals["submitted"] == submitted + finn["enqueued"], totals


def test_a_stopped_node_is_alive_but_not_answering_in_every_view(cluster_env):
    path, submitted = start(cluster_env)
    pical = cluster_env.record("seed")["nodes"]["pical"]
    os.kill(pical["pid"], signal.SIGSTOP)
    try:
        v = look(cluster_env, path)
        assert not disagreements(v), disagreements(v)
        row = next(r for r in v.status["nodes"] if r["name"] == "pical")
        assert (row["state"], row["alive"], row["ping_ms"]) == ("RUNNING", True, None), row
        assert v.status_rc == 1 and "8/8 nodes alive, 7/8 answering" in v.status_text, v.status_text
        assert v.echo["missing"] == ["pical"] and "7/8 nodes up" in v.top
    finally:
        os.kill(pical["pid"], signal.SIGCONT)
    agreeing(cluster_env, path, whole)
    totals = books(cluster_env, path)
    assert totals["balanced"] and totals["submitted"] == submitted, totals


def test_a_killed_supervisor_and_its_stale_run_directory_are_said_alike(cluster_env):
    """The record still says running; no process is left: every command says the
    supervisor is gone, in the same words; after `ctl stop` cleans up, that the cluster
    is stopped; after a start, every view agrees again."""
    path, _ = start(cluster_env)
    record = cluster_env.record("seed")
    os.kill(record["supervisor"]["pid"], signal.SIGKILL)
    wait_until(lambda: not cluster_env.processes(), WAIT, "the supervisor's nodes and burners to die with it")
    assert cluster_env.record("seed")["state"] == "running"  # stale: nobody lived to write it

    def every_command_says(words, but_stop=False):
        for argv in (("status",), ("echo",), ("top", "--once"), ("finn",), ("submit", "root"), ("rebalance",)) + (
                () if but_stop else (("stop",),)):
            r = cluster_env.ctl(*argv, "-t", path)
            assert r.returncode == 1 and words in r.stderr, (argv, r.stdout, r.stderr)

    every_command_says(f"cluster seed is stopped: its supervisor pid {record['supervisor']['pid']} is gone "
                       f"without a stop", but_stop=True)
    cleaned = cluster_env.ctl("stop", "-t", path)
    assert cleaned.returncode == 0, cleaned.stderr
    assert cluster_env.record("seed")["state"] == "stopped"
    every_command_says("cluster seed is stopped (since ")
    assert cluster_env.ctl("start", path).returncode == 0
    agreeing(cluster_env, path, whole)
