"""Traces of simulated runs (daemon/sim/trace.py): tracing leaves the run as it was,
every step is there and every message is paired with the receive that really got it."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from daemon.sim.chaos import simulate_chaos
from daemon.sim.echo import simulate_echo
from daemon.sim.finn import simulate_finn
from daemon.sim.trace import ChaosTracer
from daemon.trace.model import Trace
from sim_graphs import graph_cases, make_case, profile


@given(case=graph_cases(), seed=st.integers(0, 2**32 - 1), dup=st.sampled_from([0.0, 0.3]))
@profile(60)
def test_a_traced_run_is_the_run(case, seed, dup):
    graph = case.graph()
    for simulate in (simulate_echo, simulate_finn):
        plain = simulate(graph, seed=seed, dup=dup)
        traced = simulate(graph, seed=seed, dup=dup, traced=True)
        assert (traced.decisions, traced.per_channel, traced.events) == (plain.decisions, plain.per_channel,
                                                                         plain.events)
        trace = traced.trace
        assert len(trace.steps) == traced.events  # one step per accepted event
        messages = trace.messages
        assert sum(m.send is not None for m in messages) == traced.messages
        assert all(m.recv is not None for m in messages if m.send is not None)  # nothing is lost
        assert sum(m.duplicate for m in messages) == traced.duplicates
        assert Trace.from_dict(trace.to_dict()).to_dict() == trace.to_dict()


def test_numbering_pairs_what_order_would_not():
    """Reordered and duplicated Finn messages: by order alone some receive would be
    paired with a send after it; numbered, every pair runs forward in time."""
    graph = make_case("strong", 20, random.Random(3)).graph()
    run = simulate_finn(graph, seed=3, dup=0.3, traced=True)
    steps = run.trace.steps
    for m in run.trace.messages:
        if m.send is not None and m.recv is not None:
            assert steps[m.send[0]].t < steps[m.recv].t
    d = run.trace.to_dict()
    for s in d["steps"]:
        if s["in"]:
            s["in"].pop("n", None)
    by_order = Trace.from_dict(d)
    assert any(steps[m.send[0]].t > steps[m.recv].t for m in by_order.messages
               if m.send is not None and m.recv is not None)


def test_chaos_traces_restarts_as_new_incarnations():
    from daemon.sim.graph import generated

    topology = generated(8, "strong", 5)
    for seed in range(1, 40):
        tracer = ChaosTracer(topology.names, topology.edges())
        report = simulate_chaos(topology, seed, tracer=tracer)
        if report["faults"]["restart"]:
            break
    else:
        raise AssertionError("no chaos seed in 1..39 restarted a node")
    trace = tracer.trace()
    incs: dict[str, list[int]] = {}
    for s in trace.steps:
        incs.setdefault(s.node, [])
        if s.inc not in incs[s.node]:
            incs[s.node].append(s.inc)
    restarted = [n for n, i in incs.items() if len(i) > 1]
    assert restarted
    for node in restarted:
        for inc in incs[node]:
            seqs = [s.seq for s in trace.steps if s.node == node and s.inc == inc]
            assert seqs == list(range(len(seqs)))
    assert trace.order  # a consistent happens-before: no receive before its send
    steps = trace.steps
    for m in trace.messages:
        if m.send is not None and m.recv is not None:
            assert steps[m.send[0]].t <= steps[m.recv].t
