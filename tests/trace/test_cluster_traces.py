"""Traces that real daemons recorded (tests/trace/data/cluster-*.etrace: the seed tree on
this machine, fetched by the flight recorders of the recorder branch at c79b2d5 with
``ctl echo|finn|rebalance --trace``; pical killed for the last one): the trace tools
read, check, show and write what the cluster writes, not only what the simulator does."""

from __future__ import annotations

import json
import os

import pytest

from daemon.trace.check import check
from daemon.trace.formats import perfetto
from daemon.trace.model import load
from daemon.trace.report import format_report, report
from traces import check_perfetto

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


@pytest.mark.parametrize("name, kind, waves", [("echo", "echo", 1), ("finn", "finn", 1), ("round", "rebalance", 2)])
def test_a_cluster_trace_keeps_every_rule(name, kind, waves):
    trace = load(os.path.join(DATA, f"cluster-{name}.etrace"))
    assert (trace.source, trace.clock, trace.kind) == ("cluster", "wall", kind)
    violations, checked = check(trace)
    assert violations == [] and len(checked) == waves
    text = format_report(report(trace))
    assert "critical path to the" in text and "off by the clocks' offset across hosts" in text
    check_perfetto(json.loads(json.dumps(perfetto(trace))), trace)


def test_a_dead_nodes_trace_names_it_and_its_lost_explore():
    trace = load(os.path.join(DATA, "cluster-dead-pical.etrace"))
    violations, _ = check(trace)
    rules = {(v.rule, v.node) for v in violations}
    assert ("trace.missing", "pical") in rules and ("wave.causality", "root") in rules
    r = report(trace)
    assert [(m["to"], m["type"]) for m in r["lost"]] == [("pical", "explore")]
    hops = r["waves"][0]["path"]
    # the wave waited at subserviate for its deadline: a tick on the critical path
    assert any(h["kind"] == "local" and h["to"].startswith("subserviate#") for h in hops)
