"""Echo over the simulated network: Tel's lemmas for algorithm 6.5, checked on
generated topologies (trees, DAGs, strongly connected and arbitrary graphs, 2 to 60
nodes; one node is its own case below), random initiators, seeds and duplicate rates.
Links, degrees and channels come from the drawn edge list (tests/sim/oracles.py), not
from the simulator's index. Every run of the property tests is traced, and its trace
passes the trace check (daemon/trace/check.py), which reads only the trace."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from daemon.sim.echo import simulate_echo, spanning_tree_problem
from daemon.sim.graph import IndexedGraph
from daemon.trace.check import check
import oracles
from sim_graphs import graph_cases, make_case, profile, replay_hint

seeds = st.integers(0, 2**32 - 1)
dups = st.sampled_from([0.0, 0.05, 0.3])


@given(case=graph_cases(), seed=seeds, dup=dups, data=st.data())
@profile(500)
def test_echo_keeps_tel_lemmas(case, seed, dup, data):
    graph = case.graph()
    n = len(graph)
    root = data.draw(st.integers(0, n - 1), label="initiator")
    run = simulate_echo(graph, graph.names[root], seed=seed, dup=dup, traced=True)
    hint = replay_hint(case, "echo", seed, dup, f" --from {graph.names[root]}")

    assert run.limit is None, hint
    assert run.rejected == [], hint
    # Exactly 2|E| sends, deg(p) by each node, one per directed channel of the view.
    names = graph.names
    edges = oracles.case_edges(case)
    assert run.messages == 2 * len(oracles.links(edges)), hint
    degree = oracles.degrees(names, edges)
    assert run.per_node == [degree[name] for name in names], hint
    assert {(names[p], names[q]) for p, q in run.per_channel} == oracles.channels(edges), hint
    assert set(run.per_channel.values()) <= {1}, hint
    # Exactly one decision, at the initiator, with nothing but duplicates in flight.
    assert [node for _, node in run.decisions] == [root], hint
    assert run.in_flight_at_decision == 0, hint
    # One entry per node; the father pointers are a spanning tree rooted at the initiator.
    entries = run.entries
    assert sorted(p for p, _, _ in entries) == list(range(n)), hint
    assert spanning_tree_problem(graph, root, entries) is None, hint
    # The same, from the edge list: each father is a neighbour and leads to the root.
    father = {names[p]: (names[f] if f is not None else None) for p, f, _ in entries}
    view = oracles.links(edges)
    for name in names:
        hops, at = 0, name
        while father[at] is not None:
            assert frozenset((at, father[at])) in view, hint
            at, hops = father[at], hops + 1
            assert hops < n, hint  # no cycle
        assert at == names[root], hint
    assert all(f == run.fathers[p] for p, f, _ in entries), hint
    assert all(run.reached), hint
    # Each node sampled once, when it joined; never after the decision.
    assert all(0.0 <= s["sampled_at"] <= run.decided_at for _, _, s in entries), hint
    assert run.problems(graph) == [], hint
    assert check(run.trace)[0] == [], hint


@given(case=graph_cases(), seed=seeds)
@profile(150)
def test_duplicates_change_deliveries_not_the_wave(case, seed):
    """With the same seed, duplicates add deliveries but every first delivery happens at
    the same time, so the wave's sends, tree and decision time are the same."""
    graph = case.graph()
    clean = simulate_echo(graph, seed=seed, dup=0.0)
    noisy = simulate_echo(graph, seed=seed, dup=0.3, traced=True)
    assert check(noisy.trace)[0] == []
    assert noisy.messages == clean.messages
    assert noisy.per_channel == clean.per_channel
    assert noisy.decisions == clean.decisions
    assert noisy.entries == clean.entries
    assert noisy.deliveries == clean.deliveries + noisy.duplicates
    assert clean.after_decision == 0 and noisy.after_decision <= noisy.duplicates


def test_late_duplicates_reach_nodes_after_the_decision():
    """Why a daemon must remember finished waves: across a few seeds, duplicates do
    arrive after the initiator decided."""
    graph = make_case("strong", 30, random.Random(1)).graph()
    late = [simulate_echo(graph, seed=seed, dup=0.05).after_decision for seed in range(10)]
    assert sum(late) > 0


def test_one_node_network_decides_at_once():
    graph = IndexedGraph(_single())
    run = simulate_echo(graph, seed=7)
    assert run.decisions == [(0.0, 0)]
    assert run.messages == 0
    assert run.named_entries() == [("solo", None, {"cpus": 3, "sampled_at": 0.0})]
    assert run.problems(graph) == []


def test_same_seed_same_run_and_other_seed_other_timing():
    from sim_graphs import GraphCase

    case = GraphCase("graph", 6, ((0, 1), (1, 2), (2, 0), (3, 2), (3, 4), (5, 4), (1, 5)), (3, 1, 0, 5, 2, 4))
    graph = case.graph()
    a = simulate_echo(graph, seed=11, dup=0.2, clocks=True)
    b = simulate_echo(graph, seed=11, dup=0.2, clocks=True)
    c = simulate_echo(graph, seed=12, dup=0.2, clocks=True)
    assert (a.decisions, a.entries, a.per_channel, a.decision_clock) == (b.decisions, b.entries, b.per_channel, b.decision_clock)
    assert a.decisions != c.decisions  # timing is drawn from the seed


def test_decision_is_causally_after_every_node():
    """Echo's decision depends on every process (Tel, lemma 6.4's analogue for echo)."""
    from sim_graphs import GraphCase

    case = GraphCase("dag", 5, ((0, 1), (0, 2), (2, 3), (1, 3), (3, 4)), (0, 1, 2, 3, 4))
    run = simulate_echo(case.graph(), "n3", seed=5, clocks=True)
    assert all(t >= 1 for t in run.decision_clock)
    # Each node's own counter counts its events: one receive per neighbour plus deg(p)
    # sends (the initiator's start replaces one receive).
    graph = case.graph()
    assert [c[p] for p, c in enumerate(run.final_clocks)] == [2 * len(nb) for nb in graph.neighbours[:3]] + [
        2 * len(graph.neighbours[3]) + 1, 2 * len(graph.neighbours[4])]


def test_a_step_limit_is_reported_not_hung():
    from sim_graphs import GraphCase

    graph = GraphCase("tree", 4, ((0, 1), (1, 2), (2, 3)), (0, 1, 2, 3)).graph()
    run = simulate_echo(graph, seed=1, max_events=3)
    assert run.limit and "3 events" in run.limit
    assert run.undecided == ["n0"]
    assert "stopped at the limit" in run.problems(graph)[0]
    timed = simulate_echo(graph, seed=1, max_time=1.0)
    assert timed.limit and "simulated time" in timed.limit


def _single():
    from daemon.topology import from_dict

    return from_dict({"node": [{"name": "solo", "cpus": 3}]})
