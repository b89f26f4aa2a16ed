"""A VOPR-style sweep: many run seeds over topologies generated exactly as ``ctl sim``
generates them, so that a failure names the ``ctl sim`` command that replays it."""

from __future__ import annotations

import pytest

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
        graph = IndexedGraph(generated(NODES, shape, seed))
        run = simulate_echo(graph, seed=seed, dup=0.05)
        assert run.problems(graph) == [], replay("echo", shape, seed, 0.05)


@pytest.mark.parametrize("shape", ["tree", "dag", "ring", "strong"])
def test_finn_sweep(shape):
    for seed in SEEDS:
        graph = IndexedGraph(generated(NODES, shape, seed))
        run = simulate_finn(graph, seed=seed, dup=0.05, clocks=True)
        problems = run.problems() + ancestor_problems(run, graph)
        assert problems == [], replay("finn", shape, seed, 0.05)
        if shape == "tree":
            assert run.messages == NODES - 1, replay("finn", shape, seed, 0.05)
