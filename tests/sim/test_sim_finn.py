"""Finn's algorithm over the simulated network: the invariants and lemmas of Tel 6.2.6,
checked on generated topologies of 2 to 60 nodes (one node: its own case below) with
random delays and duplicates. Ancestors and source components come from the drawn edge
list (tests/sim/oracles.py), not from the simulator's index. Every run of the property
tests is traced, and its trace passes the trace check (daemon/trace/check.py), or — when
a source does not initiate — the check names exactly the nodes left undecided."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

import oracles
from daemon.sim.finn import ancestor_problems, simulate_finn
from daemon.trace.check import check
from sim_graphs import GraphCase, graph_cases, make_case, profile, replay_hint

seeds = st.integers(0, 2**32 - 1)
dups = st.sampled_from([0.0, 0.05, 0.3])


def check_step_invariants(run, graph, case, hint):
    """After every step p ∈ Inc_p, NInc_p ⊆ Inc_p, both only grow, and
    q ∈ NInc_p ⇒ In_q ⊆ Inc_p (Tel, lemma 6.21's invariants); In_q from the edge list."""
    index = {name: i for i, name in enumerate(graph.names)}
    ins = {index[name]: set() for name in graph.names}
    for parent, child in oracles.case_edges(case):
        ins[index[child]].add(index[parent])
    last_inc: dict[int, frozenset] = {}
    last_ninc: dict[int, frozenset] = {}
    for time, p, inc, ninc, _ in run.steps:
        assert p in inc, hint
        assert ninc <= inc, hint
        assert last_inc.get(p, frozenset()) <= inc, hint
        assert last_ninc.get(p, frozenset()) <= ninc, hint
        if ninc is not last_ninc.get(p):  # only re-check the closure when NInc changed
            for q in ninc:
                assert ins[q] <= inc, hint
        last_inc[p], last_ninc[p] = inc, ninc


@given(case=graph_cases(), seed=seeds, dup=dups)
@profile(450)
def test_finn_keeps_tel_lemmas(case, seed, dup):
    graph = case.graph()
    n = len(graph)
    run = simulate_finn(graph, seed=seed, dup=dup, clocks=True, trace=True, traced=True)
    hint = replay_hint(case, "finn", seed, dup)

    assert run.limit is None, hint
    assert run.rejected == [], hint
    check_step_invariants(run, graph, case, hint)
    # At most one decision per node, and (every source component initiated) everyone decides.
    deciders = [p for _, p in run.decisions]
    assert len(deciders) == len(set(deciders)) == n, hint
    assert run.undecided == [], hint
    assert sum(1 for step in run.steps if step[4]) == n, hint
    # At a decision Inc_p = NInc_p = p and all its ancestors, and the decision is
    # causally after an event at each of them.
    names = graph.names
    index = {name: i for i, name in enumerate(names)}
    above = oracles.ancestors(names, oracles.case_edges(case))
    decided_sets = {p: inc for _, p, inc, ninc, decided in run.steps if decided and inc == ninc}
    assert sorted(decided_sets) == list(range(n)), hint
    for p, inc in decided_sets.items():
        assert {names[a] for a in inc} == above[names[p]], hint
        clock = run.decision_clocks[p]
        assert all(clock[index[a]] >= 1 for a in above[names[p]]), hint
    assert ancestor_problems(run, graph) == [], hint
    # At most 2N sends per directed channel, and only on edges of the topology.
    assert run.max_per_channel <= 2 * n, hint
    assert {(names[p], names[q]) for p, q in run.per_channel} <= set(oracles.case_edges(case)), hint
    assert run.problems() == [], hint
    if case.shape == "strong":
        # Every decision depends on all N nodes.
        assert all(inc == set(range(n)) for inc in decided_sets.values()), hint
    if case.shape == "tree":
        assert run.messages == n - 1, hint  # a broadcast
    assert check(run.trace)[0] == [], hint


@given(case=graph_cases(shapes=("tree",), min_nodes=1), seed=seeds, dup=dups)
@profile(150)
def test_out_tree_is_a_broadcast_of_n_minus_1(case, seed, dup):
    graph = case.graph()
    run = simulate_finn(graph, seed=seed, dup=dup, traced=True)
    assert run.messages == len(graph) - 1, replay_hint(case, "finn", seed, dup)
    assert run.undecided == []
    assert check(run.trace)[0] == []


@given(case=graph_cases(shapes=("graph", "strong", "dag")), seed=seeds, dup=dups, data=st.data())
@profile(300)
def test_extra_initiators_do_not_change_the_outcome(case, seed, dup, data):
    """Everyone decides once on any graph when every source component initiates, however
    many other nodes also initiate (and whichever member of a component starts it)."""
    graph = case.graph()
    n = len(graph)
    components = oracles.source_components(graph.names, oracles.case_edges(case))
    required = [graph.names.index(data.draw(st.sampled_from(sorted(c)), label="component initiator"))
                for c in components]
    extra = data.draw(st.lists(st.integers(0, n - 1), max_size=n), label="extra initiators")
    names = [graph.names[p] for p in extra + required]
    run = simulate_finn(graph, names, seed=seed, dup=dup, traced=True)
    hint = replay_hint(case, "finn", seed, dup, "".join(f" --from {x}" for x in names))
    assert run.undecided == [], hint
    assert sorted(p for _, p in run.decisions) == list(range(n)), hint
    assert run.problems() == [], hint
    assert check(run.trace)[0] == [], hint


@given(case=graph_cases(shapes=("dag", "graph"), min_nodes=2), seed=seeds, dup=dups, data=st.data())
@profile(300)
def test_a_source_that_does_not_initiate_leaves_its_descendants_undecided(case, seed, dup, data):
    graph = case.graph()
    components = oracles.source_components(graph.names, oracles.case_edges(case))
    skipped = data.draw(st.sampled_from(range(len(components))), label="skipped component")
    names = [data.draw(st.sampled_from(sorted(c)), label="component initiator")
             for k, c in enumerate(components) if k != skipped]
    run = simulate_finn(graph, names, seed=seed, dup=dup, traced=True)
    hint = replay_hint(case, "finn", seed, dup, "".join(f" --from {x}" for x in names))
    # Exactly the nodes with the skipped component among their ancestors stay undecided,
    # the run still ends (no hang, no limit) and reports them by name.
    above = oracles.ancestors(graph.names, oracles.case_edges(case))
    stuck = [name for name in graph.names if above[name] & components[skipped]]
    assert run.limit is None, hint
    assert run.undecided == stuck, hint
    assert set(run.undecided) >= components[skipped], hint
    assert run.problems(expect_all=False) == [], hint
    assert any("never decided" in problem for problem in run.problems(expect_all=True)), hint
    violations = check(run.trace)[0]
    assert {v.rule for v in violations} <= {"finn.decides", "wave.decision"}, hint  # the latter: none decided
    assert sorted(v.node for v in violations if v.rule == "finn.decides") == sorted(stuck), hint


def test_dag_decisions_are_not_in_ancestor_order():
    """Tel 6.2.6: in a DAG a node may decide before one of its ancestors. Here
    x→q, y→q, q→a, a→p, q→p: when q's second message (after hearing y) is slow to
    reach a but quick to reach p, p knows everything about its ancestors before a
    does. Some seed must show it, or the simulator has stopped reordering."""
    x, y, q, a, p = range(5)
    case = GraphCase("dag", 5, ((x, q), (y, q), (q, a), (a, p), (q, p)), (0, 1, 2, 3, 4))
    graph = case.graph()
    child_first = 0
    for seed in range(200):
        run = simulate_finn(graph, seed=seed)
        assert run.undecided == []
        order = [node for _, node in run.decisions]
        child_first += order.index(p) < order.index(a)
    assert 0 < child_first < 200


def test_repeated_and_unknown_initiators():
    case = GraphCase("dag", 3, ((0, 1), (1, 2)), (0, 1, 2))
    graph = case.graph()
    run = simulate_finn(graph, ["n0", "n0", "n1"], seed=3)
    assert run.undecided == [] and run.messages == 2 + 1  # n1's start sends once more
    import pytest

    from daemon.errors import BadInput

    with pytest.raises(BadInput, match="no node named 'n9'"):
        simulate_finn(graph, ["n9"])


def test_limit_is_reported_with_undecided_nodes():
    graph = make_case("strong", 12, random.Random(4)).graph()
    run = simulate_finn(graph, seed=1, max_events=10)
    assert run.limit and run.undecided
    assert "stopped at the limit" in run.problems()[0]


def test_one_node_network_decides_at_once():
    """The single node is its own source component: it decides on its own start, with
    nothing sent (graph_cases draws at least two nodes)."""
    graph = GraphCase("tree", 1, (), (0,)).graph()
    run = simulate_finn(graph, seed=5, clocks=True)
    assert [p for _, p in run.decisions] == [0]
    assert run.messages == 0 and run.undecided == [] and run.problems() == []
