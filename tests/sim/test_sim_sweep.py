"""A VOPR-style sweep: many run seeds over topologies generated exactly as ``ctl sim``
generates them, so that a failure names the ``ctl sim`` command that replays it.

Besides the run's own ``problems()``, each run is checked against oracles computed from
the generated topology's ``parents`` lists (tests/sim/oracles.py): the number of echo
messages, the nodes reached, and each Finn decision's Inc against the ancestors."""

from __future__ import annotations

import pytest

import oracles
from daemon.sim.echo import simulate_echo
from daemon.sim.finn import ancestor_problems, simulate_finn
from daemon.sim.graph import IndexedGraph, generated

SEEDS = range(20)
NODES = 40


def replay(wave, shape, seed, dup):
    return f"replay: ctl sim {wave} --nodes {NODES} --shape {shape} --seed {seed} --dup {dup}"


@pytest.mark.parametrize("shape", ["tree", "dag", "ring", "strong"])
def test_echo_sweep(shape):
    for seed in SEEDS:
        topology = generated(NODES, shape, seed)
        graph = IndexedGraph(topology)
        run = simulate_echo(graph, seed=seed, dup=0.05)
        hint = replay("echo", shape, seed, 0.05)
        assert run.problems(graph) == [], hint
        edges = oracles.topology_edges(topology)
        assert run.messages == 2 * len(oracles.links(edges)), hint
        assert [node for _, node in run.decisions] == [0], hint
        assert sorted(graph.names[p] for p, _, _ in run.entries) == sorted(topology.names), hint


@pytest.mark.parametrize("shape", ["tree", "dag", "ring", "strong"])
def test_finn_sweep(shape):
    for seed in SEEDS:
        topology = generated(NODES, shape, seed)
        graph = IndexedGraph(topology)
        run = simulate_finn(graph, seed=seed, dup=0.05, clocks=True)
        hint = replay("finn", shape, seed, 0.05)
        problems = run.problems() + ancestor_problems(run, graph)
        assert problems == [], hint
        names = graph.names
        above = oracles.ancestors(names, oracles.topology_edges(topology))
        assert sorted(names[p] for _, p in run.decisions) == sorted(names), hint
        for p, inc in run.decision_inc.items():
            assert {names[a] for a in inc} == above[names[p]], hint
        if shape == "tree":
            assert run.messages == NODES - 1, hint
