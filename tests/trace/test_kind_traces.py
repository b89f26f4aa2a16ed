"""Traces of the kinds other than echo and Finn (daemon/trace/check.py ``_any_kind``):
a traced simulated run of tarry, tree, phase and election passes ``check()`` — the
generic rules and the kind's own ``check()`` on the run the trace shows — and the same
trace broken on purpose (a message dropped, a decision's result changed, a decision
duplicated) fails with the kind's rule ``<kind>.check``. Decisions carry their result
as JSON text when it is small (daemon/trace/recorder.py); a trace without it (written
before results were kept) still loads."""

from __future__ import annotations

import copy
import json
import os

import pytest

from daemon.core import messages as m
from daemon.core.node import Reply
from daemon.core.wave import Graph, Stream
from daemon.sim.wave import simulate_wave
from daemon.trace.check import check, wave_run
from daemon.trace.model import Trace, TraceError, load
from daemon.trace.recorder import RESULT_CHARS, Recorder, StepError, check_step
from traces import ROOT, gen, seed_topology


def ring(n: int) -> Graph:
    names = tuple(f"n{k:02d}" for k in range(n))
    return Graph(names, tuple((names[k], names[(k + 1) % n]) for k in range(n)))


def sim_trace(kind: str, graph, seed: int = 4, dup: float = 0.0, params=None) -> dict:
    run = simulate_wave(kind, graph, params=params, seed=seed, dup=dup, trace=True)
    assert run.ok, run.violations
    return run.trace.to_dict()


def runs():
    """(kind, trace dict) of one simulated run of each kind on a topology it runs on."""
    seed = Graph.of(seed_topology())  # an out-tree of 8 nodes
    return [
        ("tarry", sim_trace("tarry", Graph.of(gen(12, "strong")))),
        ("tarry", sim_trace("tarry", seed, dup=0.3)),
        ("tree", sim_trace("tree", seed)),
        ("phase", sim_trace("phase", Graph.of(gen(10, "strong")), params={"D": 9})),
        ("phase", sim_trace("phase", ring(6), dup=0.3, params={"D": 5})),
        ("election", sim_trace("election", ring(9))),
    ]


RUNS = runs()
IDS = [f"{kind}-{k}" for k, (kind, _) in enumerate(RUNS)]


def rules(d: dict) -> set[str]:
    violations, _ = check(Trace.from_dict(d))
    return {v.rule for v in violations}


def decided_steps(d: dict) -> list[dict]:
    return [s for s in d["steps"] if s["decide"]]


@pytest.mark.parametrize("kind, d", RUNS, ids=IDS)
def test_a_simulated_run_keeps_the_generic_rules_and_the_kinds_own(kind, d):
    violations, waves = check(Trace.from_dict(d))
    assert violations == []
    assert [(w.kind, w.decisions >= 1, w.messages > 0) for w in waves] == [(kind, True, True)]
    assert all(dec["result"] is not None for s in decided_steps(d) for dec in s["decide"])
    # the dict form keeps the result text: written and read back, the same trace
    assert Trace.from_dict(d).to_dict() == d


@pytest.mark.parametrize("kind, d", RUNS, ids=IDS)
def test_a_dropped_message_fails_the_kinds_check(kind, d):
    broken = copy.deepcopy(d)
    nodes = set(broken["topology"]["nodes"])
    # the last send on a channel: the receives' numbers (in.n) of the others stay right
    sender = next(s for s in broken["steps"] if any(o["to"] in nodes for o in s["out"]))
    to = next(o["to"] for o in sender["out"] if o["to"] in nodes)
    last = [s for s in broken["steps"] if s["node"] == sender["node"] and any(o["to"] == to for o in s["out"])][-1]
    del last["out"][max(k for k, o in enumerate(last["out"]) if o["to"] == to)]
    assert f"{kind}.check" in rules(broken)


RESULT_CHANGES = {
    "tarry": lambda r: {"hops": r["hops"] + 1},
    "tree": lambda r: {"with": "root" if r["with"] != "root" else "affixed"},
    "phase": lambda r: {"D": r["D"] + 1},
    "election": lambda r: {"leader": "n00"},
}


@pytest.mark.parametrize("kind, d", RUNS, ids=IDS)
def test_a_changed_result_fails_the_kinds_check(kind, d):
    broken = copy.deepcopy(d)
    dec = decided_steps(broken)[0]["decide"][0]
    dec["result"] = json.dumps(RESULT_CHANGES[kind](json.loads(dec["result"])))
    assert rules(broken) == {f"{kind}.check"}


@pytest.mark.parametrize("kind, d", RUNS, ids=IDS)
def test_a_duplicated_decision_fails_the_kinds_check(kind, d):
    broken = copy.deepcopy(d)
    step = decided_steps(broken)[0]
    step["decide"].append(dict(step["decide"][0]))
    assert rules(broken) == {f"{kind}.check"}


def test_the_run_read_from_a_trace_is_the_simulators_run():
    for kind, graph, params in (("tarry", Graph.of(gen(12, "strong")), None), ("tree", Graph.of(seed_topology()), None),
                                ("phase", ring(6), {"D": 5}), ("election", ring(9), None)):
        run = simulate_wave(kind, graph, params=params, seed=4, dup=0.3, trace=True)
        seen = wave_run(run.trace, run.trace.wave)
        assert seen.per_channel == run.run.per_channel
        assert sorted(seen.decisions) == sorted(run.run.decisions)
        assert (seen.reached, seen.complete) == (run.run.reached, True)
        assert set(seen.initiators) <= set(run.run.initiators) and seen.initiators


def test_a_message_off_the_topology_breaks_the_generic_channel_rule():
    d = copy.deepcopy(dict(RUNS[5][1]))  # election on a ring: hears from parents only
    sender = next(s for s in d["steps"] if s["out"])
    o = sender["out"][0]
    back = next(a for a, b in d["topology"]["edges"] if b == sender["node"])  # its parent: against the edge
    sender["out"].append({"to": back, "type": o["type"], "wave": o["wave"]})
    assert "wave.channel" in rules(d)


def test_a_kind_not_installed_here_is_a_violation_not_a_crash():
    d = copy.deepcopy(RUNS[0][1])
    d["kind"] = None
    for s in decided_steps(d):
        for dec in s["decide"]:
            dec["kind"] = "nosuchkind"
    violations, _ = check(Trace.from_dict(d))
    assert [(v.rule, "'nosuchkind' is not installed" in v.text) for v in violations] == [("trace.kind", True)]


def test_an_old_trace_without_results_loads_and_cannot_be_judged_by_the_kind():
    old = load(os.path.join(ROOT, "tests", "trace", "data", "cluster-finn.etrace"))
    assert [d.result for _, d in old.decisions()] == [None] * len(old.decisions())
    assert check(old)[0] == []  # Finn's rules need no result
    d = copy.deepcopy(RUNS[0][1])
    for s in decided_steps(d):
        for dec in s["decide"]:
            del dec["result"]
    assert rules(d) == {"trace.result"}


def test_the_recorder_keeps_a_small_result_as_json_text_and_leaves_out_the_rest():
    rec = Recorder("a", 1, {b"op": "op"})
    big = {"x": "y" * RESULT_CHARS}
    for k, result in enumerate(({"hops": 4}, big, Stream((1, 2)), b"\x01", {"f": float("nan")})):
        rec.record(0.0, 0.0, b"\x07", 1, m.Ping(k), [Reply(b"\x07", m.WaveDecided(f"tarry-1-{k}", "tarry", "a", result))], 0)
    steps, _ = rec.select()
    assert [s["decide"][0]["result"] for s in steps] == ['{"hops":4}', None, None, None, None]
    assert [len(rec.select([f"tarry-1-{k}"])[0]) for k in range(5)] == [1] * 5  # selected by its wave
    for s in steps:
        check_step(s, "a")
    bad = dict(steps[0], decide=[dict(steps[0]["decide"][0], result="x" * (RESULT_CHARS + 1))])
    with pytest.raises(StepError, match="decide.result"):
        check_step(bad, "a")
    with pytest.raises(StepError, match="decide.result"):
        check_step(dict(steps[0], decide=[dict(steps[0]["decide"][0], result=4)]), "a")


def test_the_model_refuses_a_result_that_is_not_json_text():
    d = copy.deepcopy(RUNS[0][1])
    decided_steps(d)[0]["decide"][0]["result"] = "{hops"
    with pytest.raises(TraceError, match=r"decide\[0\]\.result is not JSON text"):
        Trace.from_dict(d)
