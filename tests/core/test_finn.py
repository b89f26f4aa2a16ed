"""FinnWave on its own: real wave objects, messages pumped by hand or in an order that
hypothesis picks (duplicates included). No network, no mocks."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples

from daemon.core.echo import Explore
from daemon.core.finn import FinnSets, source_components
from daemon.core.finn import FinnWave as FinnKind
from daemon.core.wave import Graph
from daemon.core.waves import NOTHING, WaveError
from daemon.sim.drive import SimNode, StepWave


def FinnWave(me, ins, outs, wave):
    """One node's Finn instance driven event by event, each returning its Step."""
    return StepWave(FinnKind, me, wave, parents=ins, children=outs)


W = "w1"


def sets(inc, ninc):
    return FinnSets(W, frozenset(inc), frozenset(ninc))


def test_a_lone_node_decides_when_it_initiates():
    solo = FinnWave("s", [], [], W)
    step = solo.initiate()
    assert step.decided and step.sends == []
    assert solo.inc == solo.ninc == {"s"}


def test_a_source_enters_ninc_when_it_initiates():
    src = FinnWave("s", [], ["a", "b"], W)
    step = src.initiate()
    assert step.sends == [("a", sets({"s"}, {"s"})), ("b", sets({"s"}, {"s"}))]
    assert step.decided  # Inc = NInc = {s}: a source depends on nobody
    assert src.sent == 2


def test_repeated_initiate_does_nothing():
    src = FinnWave("s", [], ["a"], W)
    src.initiate()
    assert src.initiate() is NOTHING
    assert src.sent == 1
    inner = FinnWave("a", ["s"], ["b"], W)
    inner.receive("s", sets({"s"}, {"s"}))
    assert inner.initiate() is NOTHING  # already sent its sets


def test_a_non_source_initiator_sends_without_joining_ninc():
    p = FinnWave("p", ["q"], ["q"], W)
    step = p.initiate()
    assert step.sends == [("q", sets({"p"}, set()))] and not step.decided


def test_forwarding_starts_before_hearing_every_in_neighbour():
    """Waiting for every in-neighbour first deadlocks on a cycle."""
    p = FinnWave("p", ["a", "b"], ["c"], W)
    step = p.receive("a", sets({"a"}, set()))
    assert step.sends == [("c", sets({"a", "p"}, set()))]
    assert "p" not in p.ninc


def test_joins_ninc_after_hearing_every_in_neighbour_and_decides_once():
    p = FinnWave("p", ["a", "b"], ["c"], W)
    p.receive("a", sets({"a"}, {"a"}))
    step = p.receive("b", sets({"b"}, {"b"}))
    assert p.inc == p.ninc == {"a", "b", "p"}
    # The deciding step still forwards the final sets: the successors need them.
    assert step.decided and step.sends == [("c", sets({"a", "b", "p"}, {"a", "b", "p"}))]
    assert p.receive("b", sets({"b"}, {"b"})) is NOTHING  # a duplicate: no re-flood
    assert p.decided and p.sent == 2


def test_no_re_flood_when_nothing_grew():
    p = FinnWave("p", ["a", "b"], ["c"], W)
    p.receive("a", sets({"a", "x"}, {"x"}))
    assert p.receive("b", sets({"b"}, set())).sends  # p joined NInc: that is growth
    assert p.receive("a", sets({"a"}, set())) is NOTHING
    assert p.receive("b", sets({"b", "x"}, {"x"})) is NOTHING


def test_sets_are_never_reset_after_forwarding():
    p = FinnWave("p", ["a"], ["c"], W)
    p.receive("a", sets({"a", "x"}, {"x"}))
    p.receive("a", sets({"a", "y"}, {"y"}))
    assert p.inc == {"a", "x", "y", "p"} and p.ninc == {"x", "y", "p"}


def test_a_message_from_a_non_in_neighbour_raises():
    p = FinnWave("p", ["a"], ["c"], W)
    with pytest.raises(WaveError, match="'c', which is not an in-neighbour"):
        p.receive("c", sets({"c"}, set()))
    assert p.heard == set() and p.inc == {"p"}


def test_a_message_of_another_wave_or_type_raises():
    p = FinnWave("p", ["a"], ["c"], W)
    with pytest.raises(WaveError, match="wave w2 .* handed to wave w1"):
        p.receive("a", FinnSets("w2", frozenset({"a"}), frozenset()))
    with pytest.raises(WaveError, match="not a Finn message"):
        p.receive("a", Explore(W))
    assert p.heard == set()


def test_a_node_cannot_neighbour_itself():
    with pytest.raises(ValueError, match="lists itself"):
        FinnWave("p", ["p"], [], W)
    with pytest.raises(ValueError, match="lists itself"):
        FinnWave("p", [], ["p"], W)


# -- whole waves, delivered in an order hypothesis chooses ---------------------------
#
# The order: oldest message first (FIFO everywhere), newest first (the most reordered),
# or random from a seed hypothesis draws (a draw per delivery would cost more than the
# wave). A delivered message is redelivered later with probability 0.3.

orders = st.sampled_from(["random", "oldest", "newest"])


@st.composite
def strongly_connected(draw, max_nodes=8):
    n = draw(st.integers(1, max_nodes))
    cycle = draw(st.permutations(range(n)))
    edges = {(cycle[i], cycle[(i + 1) % n]) for i in range(n)} if n > 1 else set()
    for _ in range(draw(st.integers(0, 2 * n))):
        a, b = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        if a != b:
            edges.add((a, b))
    return n, sorted(edges)


@given(graph=strongly_connected(), order=orders, schedule_seed=st.integers(0, 2**32 - 1), data=st.data())
@settings(max_examples=examples(300))
def test_strongly_connected_any_order_with_duplicates(graph, order, schedule_seed, data):
    rng = random.Random(schedule_seed)
    pick = {"random": rng.randrange, "oldest": lambda k: 0, "newest": lambda k: k - 1}[order]
    n, edges = graph
    ins = {p: [a for a, b in edges if b == p] for p in range(n)}
    outs = {p: [b for a, b in edges if a == p] for p in range(n)}
    waves = {p: FinnWave(p, ins[p], outs[p], W) for p in range(n)}
    starter = data.draw(st.integers(0, n - 1), label="initiator")
    step = waves[starter].initiate()
    decisions = [starter] if step.decided else []
    in_flight = [(starter, q, m, False) for q, m in step.sends]
    per_channel: dict = {}
    for src, dst, _, _ in in_flight:
        per_channel[src, dst] = per_channel.get((src, dst), 0) + 1
    while in_flight:
        src, dst, msg, is_copy = in_flight.pop(pick(len(in_flight)))
        if not is_copy and rng.random() < 0.3:
            in_flight.append((src, dst, msg, True))  # delivered again, some time later
        before = (waves[dst].inc, waves[dst].ninc)
        step = waves[dst].receive(src, msg)
        w = waves[dst]
        assert dst in w.inc and w.ninc <= w.inc
        assert before[0] <= w.inc and before[1] <= w.ninc
        assert all(set(ins[q]) <= w.inc for q in w.ninc)
        if step.decided:
            decisions.append(dst)
        for q, m in step.sends:
            in_flight.append((dst, q, m, False))
            per_channel[dst, q] = per_channel.get((dst, q), 0) + 1
    assert sorted(decisions) == list(range(n))  # everyone, once
    assert all(w.inc == w.ninc == set(range(n)) for w in waves.values())
    assert max(per_channel.values(), default=0) <= 2 * n


def test_finn_names_the_message_it_refuses():
    with pytest.raises(WaveError, match=r"^p: wave w: Explore from 'q' is not a Finn message$"):
        FinnWave("p", ["q"], [], "w").receive("q", Explore("w"))
    assert FinnWave("p", ["q"], ["z"], "w").receive("q", FinnSets("w", frozenset({"q"}), frozenset())).sends


def test_a_decision_is_described_by_the_tasks_it_enqueued():
    """What a trace says of a Finn decision (daemon/trace/recorder.py), one task singular."""
    assert FinnKind.describe({"sent": 2, "enqueued": ["t1"]}, 4) == "enqueued 1 task"
    assert FinnKind.describe({"sent": 2, "enqueued": ["t1", "t2"]}, 4) == "enqueued 2 tasks"
    assert FinnKind.describe({"sent": 2}, 4) == "enqueued 0 tasks"
    assert FinnKind.describe(None, 4) == "enqueued 0 tasks"


def test_the_kind_starts_in_every_source_component_and_counts_who_the_start_reaches():
    # {a, b} a cycle fed by nothing; e a source; c fed by both; {d} fed by c; f alone
    g = Graph(
        ("c", "b", "d", "a", "e", "f"),
        (("a", "b"), ("b", "a"), ("b", "c"), ("e", "c"), ("c", "d"), ("d", "c")),
    )
    assert source_components(g) == ["b", "e", "f"]  # first of each component in the graph's order
    assert FinnKind.initiators(g) == ("b", "e", "f")
    assert FinnKind.initiators(g, ("a",)) == ("a",)
    assert FinnKind.deciders(g, ("b", "e", "f")) == 6
    assert FinnKind.deciders(g, ("e",)) == 3  # e, c, d
    assert FinnKind.deciders(g, ("d",)) == 2  # d, c
    assert FinnKind.deciders(g, ()) == 0
    assert source_components(Graph((), ())) == []
    # a three-node cycle (reached only over two hops) and a lone node, in an order that
    # is not the names' order: the graph's order is kept
    ring = Graph(("z", "y", "x", "w"), (("z", "y"), ("y", "x"), ("x", "z")))
    assert source_components(ring) == ["z", "w"]


class EnqueueingNode(SimNode):
    """The simulator's node, keeping what each decision asked it to enqueue."""

    __slots__ = ("asked",)

    def enqueue(self, tasks, cost):
        self.asked = (tasks, cost)
        return super().enqueue(tasks, cost)


def test_a_wave_given_no_parameters_enqueues_no_task_of_cost_one():
    """``tasks`` and ``cost`` left out of the parameters (the node fills in the kind's
    defaults; a core built without them must still decide): nothing to enqueue, at the
    unit cost."""
    for params in (None, {}):
        node = EnqueueingNode("solo")
        wave = FinnKind(node, W, params)
        wave.start()
        assert node.asked == (0, 1.0)
        assert node.result == {"sent": 0, "enqueued": []}
    node = EnqueueingNode("solo")
    FinnKind(node, W, {"tasks": 2, "cost": 0.5}).start()
    assert node.asked == (2, 0.5) and node.result == {"sent": 0, "enqueued": ["solo:1", "solo:2"]}


def test_sets_off_the_wire_arrive_as_lists_and_are_merged_as_sets():
    """The wire carries Inc and NInc as lists (daemon/wire.py); cores in one process
    share frozensets. Both merge the same, and what is forwarded is frozensets."""
    c = FinnWave("c", ["a", "b"], ["d"], W)
    step = c.receive("a", FinnSets(W, ["a", "x"], ["x"]))
    assert step.sends == [("d", sets({"a", "c", "x"}, {"x"}))]
    assert type(c.inc) is frozenset and type(c.ninc) is frozenset
    step = c.receive("b", FinnSets(W, ["b"], ["a", "b"]))
    assert step.sends == [("d", sets({"a", "b", "c", "x"}, {"a", "b", "c", "x"}))] and step.decided
    assert type(c.inc) is frozenset and type(c.ninc) is frozenset
