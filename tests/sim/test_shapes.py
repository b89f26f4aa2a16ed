"""What the kinds refuse (daemon/core/shapes.py through each kind's ``refuse()``),
against plain oracles on random graphs of every shape of tests/sim/wave_nets.py, and the
sentences for each way a graph falls short."""

from __future__ import annotations

import random

import pytest

import wave_nets
from daemon.core import shapes
from daemon.core.election import ElectionWave
from daemon.core.phase import PhaseWave
from daemon.core.tarry import TarryWave
from daemon.core.tree import TreeWave
from daemon.core.wave import Graph


def reach(graph, start, forward=True):
    seen, todo = {start}, [start]
    while todo:
        p = todo.pop()
        for a, b in graph.edges:
            q = b if forward and a == p else a if not forward and b == p else None
            if q is not None and q not in seen:
                seen.add(q)
                todo.append(q)
    return seen


def is_strong(graph):
    everyone = set(graph.nodes)
    return all(reach(graph, n) == everyone for n in graph.nodes)


def is_ring(graph):
    n = len(graph.nodes)
    if n == 1:
        return not graph.edges
    outs = [a for a, _ in graph.edges]
    ins = [b for _, b in graph.edges]
    return (len(graph.edges) == n and sorted(outs) == sorted(graph.nodes) == sorted(ins)
            and is_strong(graph))


def test_refusals_agree_with_the_oracles():
    makers = [wave_nets.tree, wave_nets.connected, wave_nets.ring, wave_nets.strong]
    for seed in range(1200):
        rng = random.Random(seed)
        graph = makers[seed % 4](rng, rng.randint(1, 9))
        tree = len(wave_nets.links(graph)) == len(graph.nodes) - 1
        assert (TreeWave.refuse(graph) is None) == tree, (seed, graph)
        assert (ElectionWave.refuse(graph) is None) == is_ring(graph), (seed, graph)
        assert (PhaseWave.refuse(graph) is None) == is_strong(graph), (seed, graph)
        assert TarryWave.refuse(graph) is None, (seed, graph)
        if is_strong(graph):
            assert shapes.diameter(graph) == wave_nets.diameter(graph)


@pytest.mark.parametrize("graph, kind, sentence", [
    (Graph(("a", "b", "c"), (("a", "b"),)), TreeWave, "not a tree: node c is not linked to node a by any path"),
    (Graph(("a", "b", "c"), (("a", "b"), ("b", "c"), ("c", "b"), ("a", "c"))), TreeWave,
     "not a tree: the link a–c closes a cycle"),
    (Graph(("a", "b", "c"), (("a", "b"), ("a", "c"), ("b", "c"), ("c", "a"))), ElectionWave,
     "not a ring: node a has 2 children (b, c); on a directed ring each node has exactly one"),
    (Graph(("a", "b"), (("a", "b"),)), ElectionWave,
     "not a ring: node a has no parent; on a directed ring each node has exactly one"),
    (Graph(("a", "b", "c"), (("a", "b"), ("b", "c"), ("c", "a"), ("b", "a"))), ElectionWave,
     "not a ring: node a has 2 parents (c, b); on a directed ring each node has exactly one"),
    (Graph(("a", "b", "c"), (("a", "b"), ("b", "a"), ("c", "b"))), ElectionWave,
     "not a ring: node b has 2 parents (a, c); on a directed ring each node has exactly one"),
    (Graph(("a", "b", "c"), (("a", "b"), ("b", "c"))), PhaseWave,
     "not strongly connected: node b has no directed path to node a"),
    (Graph(("a", "b", "c"), (("b", "a"), ("a", "c"), ("c", "a"))), PhaseWave,
     "not strongly connected: node a has no directed path to node b"),
])
def test_refusal_sentences_name_the_node_or_link(graph, kind, sentence):
    assert kind.refuse(graph) == sentence


def test_diameter_is_left_out_past_its_bound():
    n = shapes.DIAMETER_MAX_NODES + 1
    names = tuple(f"n{i}" for i in range(n))
    ring = Graph(names, tuple((names[i], names[(i + 1) % n]) for i in range(n)))
    assert shapes.diameter(ring) is None
    assert shapes.diameter(Graph(names[:5], tuple((names[i], names[(i + 1) % 5]) for i in range(5)))) == 4
