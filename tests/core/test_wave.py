"""The wave interface itself (daemon/core/wave.py): what a kind inherits when it leaves
an event or a class method out, and the graph and run records every kind's ``refuse``
and ``check`` read. Pinned where mutation testing found them loose: the built-in kinds
override most of these, so only a kind written against the bare interface reaches them."""

from __future__ import annotations

import pytest

from daemon.core.wave import Graph, Stream, Wave, WaveRun

# a -> b, a -> c, c -> b: b has two parents, a none
G = Graph(("a", "b", "c"), (("a", "b"), ("a", "c"), ("c", "b")))


class Bare(Wave):
    """A kind that overrides nothing."""

    name = "bare"


def test_a_kind_that_overrides_nothing_gets_the_documented_defaults():
    wave = Bare("node", "w1", {"k": 1})
    assert (wave.node, wave.wave, wave.params) == ("node", "w1", {"k": 1})
    assert wave.sampled is False and wave.finished is False
    assert wave.expire() is None and wave.work() is None and wave.presample() is None
    with pytest.raises(NotImplementedError):
        wave.start()
    with pytest.raises(NotImplementedError):
        wave.receive("a", None)
    assert Bare.refuse(G) is None
    assert Bare.check(G, WaveRun(("a",))) == []
    assert Bare.deciders(G, ("a", "c")) == 1
    assert Bare.describe(Stream((1, 2)), 3) == "decided"


def test_the_default_initiator_is_the_first_node_unless_chosen():
    assert Bare.initiators(G) == ("a",)
    assert Bare.initiators(G, ("c", "b")) == ("c", "b")
    assert Bare.initiators(Graph((), ())) == ()


def test_a_graph_gives_each_node_its_parents_children_and_neighbours_in_edge_order():
    assert [G.parents(n) for n in G.nodes] == [(), ("a", "c"), ("a",)]
    assert [G.children(n) for n in G.nodes] == [("b", "c"), (), ("b",)]
    assert [G.neighbours(n) for n in G.nodes] == [("b", "c"), ("a", "c"), ("a", "b")]
    # an edge both ways makes one neighbour, parents first
    both = Graph(("x", "y"), (("x", "y"), ("y", "x")))
    assert both.neighbours("x") == ("y",) and both.parents("x") == ("y",)


def test_a_graph_of_a_topology_keeps_its_order_and_every_edge():
    class Topology:
        names = ("c", "a", "b")

        def parents(self, n):
            return {"c": ["a"], "a": [], "b": ["a", "c"]}[n]

    assert Graph.of(Topology()) == Graph(("c", "a", "b"), (("a", "c"), ("a", "b"), ("c", "b")))


def test_a_run_counts_every_send_on_every_channel():
    run = WaveRun(("a",), {("a", "b"): 2, ("b", "a"): 3})
    assert run.messages == 5
    assert WaveRun(("a",)).messages == 0
    assert (run.decisions, run.reached, run.complete) == ([], set(), True)
