"""Finn's algorithm over the simulated network: the invariants and lemmas of Tel 6.2.6,
checked on generated topologies with random delays and duplicates."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from daemon.sim.finn import ancestors, ancestor_problems, simulate_finn
from sim_graphs import GraphCase, graph_cases, make_case, profile, replay_hint

seeds = st.integers(0, 2**32 - 1)
dups = st.sampled_from([0.0, 0.05, 0.3])


def check_step_invariants(run, graph, hint):
    """After every step p ∈ Inc_p, NInc_p ⊆ Inc_p, both only grow, and
    q ∈ NInc_p ⇒ In_q ⊆ Inc_p (Tel, lemma 6.21's invariants)."""
    last_inc: dict[int, frozenset] = {}
    last_ninc: dict[int, frozenset] = {}
    for time, p, inc, ninc, _ in run.steps:
        assert p in inc, hint
        assert ninc <= inc, hint
        assert last_inc.get(p, frozenset()) <= inc, hint
        assert last_ninc.get(p, frozenset()) <= ninc, hint
        if ninc is not last_ninc.get(p):  # only re-check the closure when NInc changed
            for q in ninc:
                assert set(graph.ins[q]) <= inc, hint
        last_inc[p], last_ninc[p] = inc, ninc


@given(case=graph_cases(), seed=seeds, dup=dups)
@profile(450)
def test_finn_keeps_tel_lemmas(case, seed, dup):
    graph = case.graph()
    n = len(graph)
    run = simulate_finn(graph, seed=seed, dup=dup, clocks=True, trace=True)
    hint = replay_hint(case, "finn", seed, dup)

    assert run.limit is None, hint
    assert run.rejected == [], hint
    check_step_invariants(run, graph, hint)
    # At most one decision per node, and (every source component initiated) everyone decides.
    deciders = [p for _, p in run.decisions]
    assert len(deciders) == len(set(deciders)) == n, hint
    assert run.undecided == [], hint
    assert sum(1 for step in run.steps if step[4]) == n, hint
    # At a decision Inc_p = NInc_p = p and all its ancestors, and the decision is
    # causally after an event at each of them.
    above = ancestors(graph)
    decided_sets = {p: inc for _, p, inc, ninc, decided in run.steps if decided and inc == ninc}
    assert sorted(decided_sets) == list(range(n)), hint
    for p, inc in decided_sets.items():
        assert inc == above[p], hint
        clock = run.decision_clocks[p]
        assert all(clock[a] >= 1 for a in above[p]), hint
    assert ancestor_problems(run, graph) == [], hint
    # At most 2N sends per directed channel, and only on edges of the topology.
    assert run.max_per_channel <= 2 * n, hint
    assert set(run.per_channel) <= {(p, q) for p in range(n) for q in graph.outs[p]}, hint
    assert run.problems() == [], hint
    if case.shape == "strong":
        # Every decision depends on all N nodes.
        assert all(inc == set(range(n)) for inc in decided_sets.values()), hint
    if case.shape == "tree":
        assert run.messages == n - 1, hint  # a broadcast


@given(case=graph_cases(shapes=("tree",), min_nodes=1), seed=seeds, dup=dups)
@profile(150)
def test_out_tree_is_a_broadcast_of_n_minus_1(case, seed, dup):
    graph = case.graph()
    run = simulate_finn(graph, seed=seed, dup=dup)
    assert run.messages == len(graph) - 1, replay_hint(case, "finn", seed, dup)
    assert run.undecided == []


@given(case=graph_cases(shapes=("graph", "strong", "dag")), seed=seeds, dup=dups, data=st.data())
@profile(300)
def test_extra_initiators_do_not_change_the_outcome(case, seed, dup, data):
    """Everyone decides once on any graph when every source component initiates, however
    many other nodes also initiate (and whichever member of a component starts it)."""
    graph = case.graph()
    n = len(graph)
    required = graph.finn_initiators()
    extra = data.draw(st.lists(st.integers(0, n - 1), max_size=n), label="extra initiators")
    names = [graph.names[p] for p in extra + required]
    run = simulate_finn(graph, names, seed=seed, dup=dup)
    hint = replay_hint(case, "finn", seed, dup, "".join(f" --from {x}" for x in names))
    assert run.undecided == [], hint
    assert sorted(p for _, p in run.decisions) == list(range(n)), hint
    assert run.problems() == [], hint


@given(case=graph_cases(shapes=("dag", "graph"), min_nodes=2), seed=seeds, dup=dups, data=st.data())
@profile(300)
def test_a_source_that_does_not_initiate_leaves_its_descendants_undecided(case, seed, dup, data):
    graph = case.graph()
    n = len(graph)
    required = graph.finn_initiators()
    skipped = data.draw(st.sampled_from(required), label="skipped initiator")
    names = [graph.names[p] for p in required if p != skipped]
    run = simulate_finn(graph, names, seed=seed, dup=dup)
    hint = replay_hint(case, "finn", seed, dup, "".join(f" --from {x}" for x in names))
    # Exactly the nodes with the skipped one among their ancestors stay undecided,
    # the run still ends (no hang, no limit) and reports them by name.
    above = ancestors(graph)
    stuck = [graph.names[p] for p in range(n) if skipped in above[p]]
    assert run.limit is None, hint
    assert run.undecided == stuck, hint
    assert graph.names[skipped] in run.undecided, hint
    assert run.problems(expect_all=False) == [], hint
    assert any("never decided" in problem for problem in run.problems(expect_all=True)), hint


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
