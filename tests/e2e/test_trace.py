"""Traces fetched from real daemons: ``ctl echo|finn|rebalance|wave KIND --trace FILE`` and ``ctl
trace last FILE`` write every node's recorded steps of a wave (daemon/trace/recorder.py),
and a node that does not answer is named; ``ctl trace check`` judges those traces, and
the drawing formats take them.

The sends and receives of a trace are paired by the trace model's rule
(daemon/trace/model.py: by channel and wave, in order, never by the nodes' clocks), which
:func:`matched` reads into plain tuples."""

from __future__ import annotations

import json
import os
import signal

import pytest
from polling import WAIT, wait_until

from daemon.topology import load
from daemon.trace.model import Trace

pytestmark = pytest.mark.e2e


def matched(trace: dict) -> tuple[list, list, list]:
    """``(pairs, unreceived sends, unsent receives)`` between nodes, each keyed
    (sender, receiver, wave, sender's incarnation): ``(key, sent type, received type)``
    and ``(key, type)``."""
    t = Trace.from_dict(trace)
    pairs, lost, early = [], [], []
    for m in t.messages:
        inc = t.steps[m.send[0]].inc if m.send is not None else t.steps[m.recv].recv.inc
        key = (m.src, m.dst, m.wave, inc)
        if m.send is not None and m.recv is not None:
            pairs.append((key, m.type, t.steps[m.recv].recv.type))
        elif m.recv is None:
            lost.append((key, m.type))
        else:
            early.append((key, m.type))
    return pairs, lost, early


def load_trace(path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_an_echo_trace_holds_every_node_2E_matched_messages_and_the_decision(cluster_env, tmp_path):
    path = cluster_env.start(record=True)
    topology = load(path)
    out = tmp_path / "echo.etrace"
    snap = cluster_env.ctl_json("echo", "-t", path, "--trace", out)
    trace = load_trace(out)
    wave = snap["wave"]
    assert (trace["format"], trace["version"], trace["source"], trace["clock"]) == ("echofinn-trace", 1, "cluster", "wall")
    assert (trace["wave"], trace["kind"], trace["missing"]) == (wave, "echo", [])
    assert trace["topology"]["nodes"] == list(topology.names)
    assert sorted(map(tuple, trace["topology"]["edges"])) == sorted((p, n) for n in topology.names for p in topology.parents(n))
    assert {s["node"] for s in trace["steps"]} == set(topology.names)
    assert set(trace["dropped"]) == set(topology.names)
    pairs, lost, early = matched(trace)
    links = sum(len(topology.neighbours(n)) for n in topology.names) // 2
    assert len(pairs) == 2 * links == 14 and not lost and not early, (lost, early)
    assert all(key[2] == wave and sent == got and sent in ("explore", "echo") for key, sent, got in pairs)
    decisions = [(s["node"], d) for s in trace["steps"] for d in s["decide"]]
    assert decisions == [("root", {"wave": wave, "kind": "echo", "what": "decided: 8/8 nodes"})]  # no result: a Stream
    root = [s for s in trace["steps"] if s["node"] == "root"]
    assert root[0]["in"]["type"] == "echo.start" and root[0]["in"]["from"].startswith("op:")
    assert root[-1]["out"][-1] == {"to": root[0]["in"]["from"], "type": "echo.result", "wave": wave}
    assert all(s["dur"] >= 0 and s["queue"] == 0 for s in trace["steps"])
    r = cluster_env.ctl("trace", "check", out)
    assert r.returncode == 0 and "trace ok: 8 nodes" in r.stdout, r.stdout
    drawn = [tmp_path / name for name in ("echo.json", "echo.svg")]
    assert cluster_env.ctl("echo", "-t", path, "--trace", drawn[0]).returncode == 0
    assert {"X", "s", "f", "M"} <= {e["ph"] for e in load_trace(drawn[0])["traceEvents"]}
    assert cluster_env.ctl("trace", "convert", out, drawn[1]).returncode == 0 and drawn[1].stat().st_size > 0


def test_a_finn_trace_has_every_nodes_decision_and_trace_last_finds_the_newest_wave(cluster_env, tmp_path):
    path = cluster_env.start(record=True)
    topology = load(path)
    out = tmp_path / "finn.etrace.json"
    res = cluster_env.ctl_json("finn", "-t", path, "--tasks", "1", "--trace", out)
    trace = load_trace(out)
    assert (trace["wave"], trace["kind"], trace["missing"]) == (res["wave"], "finn", [])
    decided = {s["node"]: d for s in trace["steps"] for d in s["decide"]}
    results = {n: json.loads(d.pop("result")) for n, d in decided.items()}
    assert decided == {n: {"wave": res["wave"], "kind": "finn", "what": "enqueued 1 task"} for n in topology.names}
    assert all(len(r["enqueued"]) == 1 for r in results.values()), results
    pairs, lost, early = matched(trace)
    assert not early and all(sent == got == "finn" for _, sent, got in pairs)
    assert len(pairs) + len(lost) == len(topology.names) - 1  # an out-tree: a broadcast of N-1
    r = cluster_env.ctl("trace", "check", out)
    assert r.returncode == 0 and "finn wave" in r.stdout, r.stdout
    # after the fact: the newest wave any node saw is that Finn wave, then an echo
    last = tmp_path / "last.etrace"
    r = cluster_env.ctl("trace", "last", last, "-t", path)
    assert r.returncode == 0, r.stderr
    assert (load_trace(last)["wave"], load_trace(last)["kind"]) == (res["wave"], "finn")
    snap = cluster_env.ctl_json("echo", "-t", path)
    assert cluster_env.ctl("trace", "last", last, "-t", path).returncode == 0
    again = load_trace(last)
    assert (again["wave"], again["kind"]) == (snap["wave"], "echo") and len(matched(again)[0]) == 14


def test_a_tarry_trace_carries_its_decisions_result_and_keeps_tarrys_own_check(cluster_env, tmp_path):
    path = cluster_env.start(record=True)
    topology = load(path)
    links = sum(len(topology.neighbours(n)) for n in topology.names) // 2
    out = tmp_path / "tarry.etrace"
    res = cluster_env.ctl_json("wave", "tarry", "-t", path, "--trace", out)
    trace = load_trace(out)
    assert (trace["wave"], trace["kind"], trace["missing"]) == (res["wave"], "tarry", [])
    decisions = [(s["node"], json.loads(d["result"])) for s in trace["steps"] for d in s["decide"]]
    assert decisions == [("root", {"hops": 2 * links})] == [("root", res["results"]["root"])]
    pairs, lost, early = matched(trace)
    assert len(pairs) == 2 * links == 14 and not lost and not early, (lost, early)
    r = cluster_env.ctl("trace", "check", out)  # the generic rules and tarry's check()
    assert r.returncode == 0 and "tarry wave" in r.stdout and "1 decision" in r.stdout, r.stdout
    last = tmp_path / "last.etrace"
    r = cluster_env.ctl("trace", "last", last, "-t", path)
    assert r.returncode == 0, r.stderr
    assert (load_trace(last)["wave"], load_trace(last)["kind"]) == (res["wave"], "tarry")
    r = cluster_env.ctl("trace", "check", last)
    assert r.returncode == 0 and "tarry wave" in r.stdout, r.stdout
    # the same trace with the decision's result changed fails tarry's own rule
    broken = load_trace(out)
    for s in broken["steps"]:
        for d in s["decide"]:
            d["result"] = json.dumps({"hops": 2 * links - 1})
    bad = tmp_path / "bad.etrace"
    bad.write_text(json.dumps(broken))
    r = cluster_env.ctl("trace", "check", bad)
    assert r.returncode == 1 and "[tarry.check]" in r.stdout and "hops" in r.stdout, r.stdout


def test_a_rebalance_trace_holds_both_echoes_and_every_move(cluster_env, tmp_path):
    path = cluster_env.start(task_time=60.0, record=True)
    assert cluster_env.ctl("submit", "subserviate", "--tasks", "12", "-t", path).returncode == 0
    out = tmp_path / "round.etrace"
    res = cluster_env.ctl_json("rebalance", "-t", path, "--trace", out)
    trace = load_trace(out)
    assert (trace["wave"], trace["kind"], trace["missing"]) == (res["round_id"], "rebalance", [])
    moves = {s["in"]["wave"] for s in trace["steps"] if s["in"] and s["in"]["type"] == "move"}
    assert len(moves) == len(res["moves"]) > 0 and all(w.startswith(res["round_id"] + "-") for w in moves)
    echoes = [d for s in trace["steps"] for d in s["decide"]]
    assert [d["kind"] for d in echoes] == ["echo", "echo"]  # before and after, both at root
    types = {s["in"]["type"] for s in trace["steps"] if s["in"]}
    assert {"move", "transfer", "explore", "echo"} <= types
    r = cluster_env.ctl("trace", "check", out)  # each of the round's two echoes
    assert r.returncode == 0 and r.stdout.count("echo wave") == 2, r.stdout


def test_a_dead_node_is_named_missing_and_bad_trace_files_are_refused(cluster_env, tmp_path):
    path = cluster_env.start(restart="never", record=True)  # pical stays dead
    for bad in ("trace.txt", "trace.pdf"):
        r = cluster_env.ctl("echo", "-t", path, "--trace", tmp_path / bad)
        assert r.returncode == 2 and bad in r.stderr and ".etrace" in r.stderr and ".svg" in r.stderr, r.stderr
    os.kill(cluster_env.record("seed")["nodes"]["pical"]["pid"], signal.SIGKILL)
    out = tmp_path / "dead.etrace"
    r = cluster_env.ctl("echo", "-t", path, "--timeout", "2", "--trace", out)
    assert r.returncode == 1 and "no trace from pical" in r.stderr and "Traceback" not in r.stderr, r.stderr
    trace = load_trace(out)
    assert trace["missing"] == ["pical"] and "pical" not in trace["dropped"]
    assert "pical" not in {s["node"] for s in trace["steps"]}
    # subserviate explored pical and never heard back: a send nobody received; giving up
    # at its deadline, it sent pical a RELINK (reopen your link to me), received by nobody too
    _, lost, _ = matched(trace)
    assert sorted((key[:2], sent) for key, sent in lost) == [(("subserviate", "pical"), "explore"),
                                                              (("subserviate", "pical"), "relink")]
    r = cluster_env.ctl("trace", "check", out)
    assert r.returncode == 1 and "[trace.missing]" in r.stdout and "node pical" in r.stdout, r.stdout
    r = cluster_env.ctl("trace", "last", tmp_path / "last.etrace", "-t", path, "--timeout", "2")
    assert r.returncode == 1 and "no trace from pical" in r.stderr, r.stderr


def test_a_cluster_that_records_nothing_says_so_for_every_node(cluster_env, tmp_path):
    path = cluster_env.start()  # recording is off by default
    out = tmp_path / "off.etrace"
    r = cluster_env.ctl("echo", "-t", path, "--trace", out)
    assert r.returncode == 1 and "8/8 nodes" in r.stdout, r.stdout + r.stderr
    for name in load(path).names:
        assert f"no trace from {name}: {name}: not recording (the topology's [cluster] does not say record = true)" \
            in r.stderr, r.stderr
    trace = load_trace(out)
    assert trace["steps"] == [] and trace["missing"] == list(load(path).names)
    r = cluster_env.ctl("trace", "last", tmp_path / "last.etrace", "-t", path)
    assert r.returncode == 1 and "records its steps: root: not recording" in r.stderr and "--record" in r.stderr, r.stderr


def test_ctl_start_record_reaches_every_node_and_its_restart_as_a_new_incarnation(cluster_env, tmp_path):
    """``ctl start --record`` over a file that does not say record = true, nodes started
    as fresh interpreters (their command line must carry it), one of them killed and
    restarted by the supervisor: its steps come back under a new incarnation."""
    cluster_env.env["ECHOFINN_SPAWN"] = "exec"
    path = cluster_env.topology("seed.toml", rebalance_interval=0)
    r = cluster_env.ctl("start", path, "--record")
    assert r.returncode == 0, r.stdout + r.stderr
    first, again = tmp_path / "first.etrace", tmp_path / "again.etrace"
    assert cluster_env.ctl("echo", "-t", path, "--trace", first).returncode == 0
    before = {s["node"]: s["inc"] for s in load_trace(first)["steps"]}
    assert set(before) == set(load(path).names)
    victim = cluster_env.record("seed")["nodes"]["pical"]["pid"]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: (e := cluster_env.record("seed")["nodes"]["pical"]).get("state") == "RUNNING"
               and e.get("pid") != victim, WAIT, "pical to be restarted")
    # the restarted node may miss the first wave while its neighbours reconnect: poll
    wait_until(lambda: cluster_env.ctl("echo", "-t", path, "--trace", again).returncode == 0, WAIT,
               "an echo over every node, pical restarted")
    after = {s["node"]: s["inc"] for s in load_trace(again)["steps"]}
    assert after["pical"] != before["pical"] and after["root"] == before["root"]
