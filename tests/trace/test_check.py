"""The wave properties on traces (daemon/trace/check.py): simulated runs pass, and each
way of breaking a trace on purpose — a message dropped, a decision duplicated, a node's
steps removed, a decision moved too early, a channel flooded — fires its rule."""

from __future__ import annotations

import copy

import pytest

from daemon.trace.check import check
from daemon.trace.model import Trace
from traces import echo_trace, finn_trace, gen, without


def rules(d: dict) -> set[str]:
    violations, _ = check(Trace.from_dict(d))
    return {v.rule for v in violations}


@pytest.mark.parametrize("shape, nodes", [("tree", 8), ("dag", 30), ("strong", 25), ("ring", 12)])
@pytest.mark.parametrize("dup", [0.0, 0.3])
def test_simulated_waves_keep_every_rule(shape, nodes, dup):
    topology = gen(nodes, shape)
    for d in (echo_trace(topology, seed=5, dup=dup), finn_trace(topology, seed=5, dup=dup)):
        violations, waves = check(Trace.from_dict(d))
        assert violations == []
        assert [w.decisions >= 1 for w in waves] == [True]


def test_the_seed_tree_echo_summary():
    violations, waves = check(Trace.from_dict(echo_trace()))
    assert violations == [] and waves[0].messages == 14 and waves[0].decisions == 1


def _first_out_step(d, node, wave_type):
    for s in d["steps"]:
        if s["node"] == node and any(o["type"] == wave_type for o in s["out"]):
            return s
    raise AssertionError(f"no step of {node} sends {wave_type}")


def test_echo_a_dropped_message_breaks_the_count_and_its_channel():
    d = echo_trace()
    s = _first_out_step(d, "tubularia", "explore")
    s["out"] = s["out"][1:]
    violations, _ = check(Trace.from_dict(d))
    found = {v.rule for v in violations}
    assert {"echo.count", "echo.channel"} <= found
    channel = [v for v in violations if v.rule == "echo.channel"]
    assert any("no message from tubularia" in v.text for v in channel)


def test_echo_a_second_decision_and_a_decision_elsewhere():
    d = echo_trace()
    decider = next(s for s in d["steps"] if s["decide"])
    other = next(s for s in d["steps"] if s["node"] == "pical")
    other["decide"] = copy.deepcopy(decider["decide"])
    violations, _ = check(Trace.from_dict(d))
    texts = [str(v) for v in violations if v.rule == "echo.decider"]
    assert any("node pical" in t and "only the initiator root may decide" in t for t in texts)
    assert any("2 decisions" in t for t in texts)


def test_echo_a_node_without_steps_breaks_causality_and_the_tree():
    d = without(echo_trace(), lambda s: s["node"] == "pical")
    found = rules(d)
    assert {"wave.causality", "echo.tree", "echo.count", "echo.channel"} <= found


def test_echo_a_node_that_began_by_itself_is_a_second_initiator():
    d = echo_trace()
    s = next(s for s in d["steps"] if s["node"] == "haywagon")
    s["in"] = {"from": "op:77", "type": "echo.start", "wave": s["in"]["wave"], "inc": None}
    assert "echo.initiator" in rules(d)


def test_no_decision_is_no_wave():
    d = echo_trace()
    for s in d["steps"]:
        s["decide"] = []
    assert "wave.decision" in rules(d)


def test_a_trace_with_missing_nodes_says_so():
    d = echo_trace()
    d["missing"] = ["pical"]
    violations, _ = check(Trace.from_dict(d))
    assert any(v.rule == "trace.missing" and v.node == "pical" for v in violations)


def test_finn_a_node_that_never_decides_and_one_that_decides_twice():
    d = finn_trace()
    pical = next(s for s in d["steps"] if s["node"] == "pical")
    root = next(s for s in d["steps"] if s["node"] == "root")
    root["decide"] = root["decide"] + copy.deepcopy(pical["decide"])
    pical["decide"] = []
    violations, _ = check(Trace.from_dict(d))
    decides = [v for v in violations if v.rule == "finn.decides"]
    assert {v.node for v in decides} == {"pical", "root"}


def test_finn_a_decision_before_its_ancestors_fires():
    d = finn_trace(gen(12, "strong"), seed=2)
    # move some node's decision to its very first step: before it heard from everyone
    node = next(n for n in d["topology"]["nodes"]
                if [s for s in d["steps"] if s["node"] == n][0]["in"]["from"] != "op:sim")
    steps = [s for s in d["steps"] if s["node"] == node]
    decision = next(s for s in steps if s["decide"])
    steps[0]["decide"], decision["decide"] = decision["decide"], []
    violations, _ = check(Trace.from_dict(d))
    assert any(v.rule == "finn.ancestors" and v.node == node for v in violations)


def test_finn_more_than_2n_messages_on_a_channel_and_one_off_the_edges():
    d = finn_trace()
    s = _first_out_step(d, "root", "finn")
    s["out"] = s["out"] + [{"to": "affixed", "type": "finn", "wave": "finn-sim"}] * 17 + [
        {"to": "pical", "type": "finn", "wave": "finn-sim"}]
    violations, _ = check(Trace.from_dict(d))
    texts = [v.text for v in violations if v.rule == "finn.channel"]
    assert any("18 messages from root to affixed, over 2N = 16" in t for t in texts)
    assert any("not its out-neighbour" in t for t in texts)


def test_a_dropped_receive_shows_as_lost_and_breaks_the_tree():
    d = echo_trace()
    gone = next(s for s in d["steps"] if s["node"] == "outwhirled")
    d = without(d, lambda s: s is gone or s == gone)
    found = rules(d)
    assert "echo.tree" in found and "wave.causality" in found


def test_echo_a_second_message_on_a_channel_fires():
    d = echo_trace()
    s = _first_out_step(d, "root", "explore")
    s["out"] = s["out"] + [dict(s["out"][0])]
    violations, _ = check(Trace.from_dict(d))
    first = s["out"][0]["to"]
    assert any(v.rule == "echo.channel" and f"2 messages from root to {first}, expected exactly one" in v.text
               for v in violations)


def test_a_balancing_round_checks_each_of_its_echoes():
    """A rebalance trace is named after its round; its waves are the echoes before and
    after the moves (and the moves' own messages are no wave)."""
    first, second = echo_trace(seed=1), echo_trace(seed=2)
    for d, wave in ((first, "e-1"), (second, "e-2")):
        for s in d["steps"]:
            for part in [s["in"]] + s["out"] + s["decide"]:
                if part and part.get("wave"):
                    part["wave"] = wave
    later = 1.0 + max(s["t"] for s in first["steps"])
    for s in second["steps"]:
        s["seq"] += 100
        s["t"] += later
    first["steps"].append({"node": "root", "inc": 0, "seq": 50, "t": later - 0.5, "dur": 0.0, "queue": 0,
                           "in": {"from": "op:1", "type": "move", "wave": "r-1-mv1", "inc": None},
                           "out": [{"to": "affixed", "type": "transfer", "wave": "r-1-mv1"}], "decide": []})
    first["steps"] += second["steps"]
    first.update(wave="r-1", kind="rebalance")
    violations, waves = check(Trace.from_dict(first))
    assert violations == [] and [(w.wave, w.kind) for w in waves] == [("e-1", "echo"), ("e-2", "echo")]
