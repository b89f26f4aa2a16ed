"""EchoWave on its own: real wave objects, messages pumped by hand or in an order that
hypothesis picks (duplicates included). No network, no mocks."""

from __future__ import annotations

import random

import pytest
from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core.echo import Echo, Explore
from daemon.core.echo import EchoWave as EchoKind
from daemon.core.finn import FinnSets
from daemon.core.finn import FinnWave as FinnKind
from daemon.core.wave import Graph
from daemon.core.waves import NOTHING, Step, WaveError
from daemon.sim.drive import SimNode, StepWave


def EchoWave(me, neighbours, wave):
    """One node's echo instance driven event by event, each returning its Step."""
    return StepWave(EchoKind, me, wave, neighbours=neighbours)


W = "w1"


def state_of(name):
    return lambda: {"node": name}


def test_one_node_decides_at_once():
    solo = EchoWave("solo", [], W)
    step = solo.start(state_of("solo"))
    assert step == Step([], True)
    assert solo.decided and solo.result == [("solo", None, {"node": "solo"})]
    assert solo.sent == 0


def test_two_nodes():
    a, b = EchoWave("a", ["b"], W), EchoWave("b", ["a"], W)
    assert a.start(state_of("a")) == Step([("b", Explore(W))], False)
    step = b.receive("a", Explore(W), state_of("b"))
    assert step == Step([("a", Echo(W, (("b", "a", {"node": "b"}),)))], False)
    assert b.father == "a" and b.finished and not b.decided
    final = a.receive("b", step.sends[0][1], state_of("a"))
    assert final.decided and final.sends == []
    assert a.result == [("a", None, {"node": "a"}), ("b", "a", {"node": "b"})]
    assert (a.sent, b.sent) == (1, 1)


def test_duplicate_explore_does_not_trigger_an_early_echo():
    """Distinct senders, not messages: a counter of messages would echo on the 3rd."""
    p = EchoWave("p", ["f", "x", "y"], W)
    first = p.receive("f", Explore(W), state_of("p"))
    assert first.sends == [("x", Explore(W)), ("y", Explore(W))]
    assert p.receive("f", Explore(W), state_of("p")) == Step([], False)
    assert p.receive("x", Explore(W), state_of("p")) == Step([], False)
    assert p.receive("x", Explore(W), state_of("p")) == Step([], False)
    last = p.receive("y", Explore(W), state_of("p"))
    assert last.sends == [("f", Echo(W, (("p", "f", {"node": "p"}),)))]
    assert p.sent == 3


def test_duplicate_echo_replaces_rather_than_adds():
    root = EchoWave("r", ["c", "d"], W)
    root.start(state_of("r"))
    echo = Echo(W, (("c", "r", 1),))
    root.receive("c", echo, state_of("r"))
    root.receive("c", echo, state_of("r"))
    step = root.receive("d", Echo(W, (("d", "r", 2),)), state_of("r"))
    assert step.decided
    assert root.result == [("r", None, {"node": "r"}), ("c", "r", 1), ("d", "r", 2)]


def test_messages_after_finishing_are_ignored():
    a = EchoWave("a", ["b"], W)
    a.start(state_of("a"))
    a.receive("b", Echo(W, (("b", "a", 0),)), state_of("a"))
    assert a.receive("b", Echo(W, (("b", "a", 0),)), state_of("a")) is NOTHING
    assert a.receive("b", Explore(W), state_of("a")) is NOTHING
    leaf = EchoWave("l", ["a"], W)
    leaf.receive("a", Explore(W), state_of("l"))
    assert leaf.receive("a", Explore(W), state_of("l")) is NOTHING


def test_an_echo_from_the_father_is_rejected():
    p = EchoWave("p", ["f", "x"], W)
    p.receive("f", Explore(W), state_of("p"))
    with pytest.raises(WaveError, match="from its father 'f'"):
        p.receive("f", Echo(W, ()), state_of("p"))
    assert p.heard == {"f"} and p.children == {}


def test_an_echo_before_the_wave_arrived_is_rejected_and_changes_nothing():
    p = EchoWave("p", ["f", "x"], W)
    with pytest.raises(WaveError, match="before the wave reached"):
        p.receive("f", Echo(W, (("f", "p", 0),)), state_of("p"))
    # Not joined, no father, nothing sampled: the next EXPLORE starts p normally.
    assert (p.joined, p.father, p.sampled, p.heard) == (False, None, False, set())
    assert p.receive("x", Explore(W), state_of("p")).sends == [("f", Explore(W))]
    assert p.father == "x"


def test_a_message_from_a_non_neighbour_raises():
    p = EchoWave("p", ["q"], W)
    with pytest.raises(WaveError, match="'z', which is not a neighbour"):
        p.receive("z", Explore(W), state_of("p"))
    assert not p.joined


def test_a_message_of_another_wave_or_type_raises():
    p = EchoWave("p", ["q"], W)
    with pytest.raises(WaveError, match="wave w2 .* handed to wave w1"):
        p.receive("q", Explore("w2"), state_of("p"))
    with pytest.raises(WaveError, match="neither EXPLORE nor ECHO"):
        p.receive("q", FinnSets(W, frozenset(), frozenset()), state_of("p"))
    assert not p.joined


def test_initiating_twice_or_after_joining_raises():
    a = EchoWave("a", ["b"], W)
    a.start(state_of("a"))
    with pytest.raises(WaveError, match="already reached"):
        a.start(state_of("a"))
    b = EchoWave("b", ["a"], W)
    b.receive("a", Explore(W), state_of("b"))
    with pytest.raises(WaveError, match="already reached"):
        b.start(state_of("b"))


def test_a_node_cannot_neighbour_itself():
    with pytest.raises(ValueError, match="lists itself"):
        EchoWave("a", ["a", "b"], W)


def test_sample_is_taken_once_even_when_it_is_none():
    calls = []

    def sample():
        calls.append(1)
        return None

    p = EchoWave("p", ["f", "x"], W)
    p.presample(sample)  # Lai–Yang: sampled before the wave's first message arrives
    p.receive("f", Explore(W), sample)
    p.receive("x", Explore(W), sample)
    assert calls == [1]
    assert p.state is None


# -- whole waves, delivered in an order hypothesis chooses ---------------------------
#
# The order: oldest message first (FIFO everywhere), newest first (the most reordered),
# or random from a seed hypothesis draws (a draw per delivery would cost more than the
# wave). A delivered message is redelivered later with probability 0.3.

orders = st.sampled_from(["random", "oldest", "newest"])


@st.composite
def connected_graphs(draw, max_nodes=9):
    n = draw(st.integers(1, max_nodes))
    links = {tuple(sorted((draw(st.integers(0, i - 1)), i))) for i in range(1, n)}
    for _ in range(draw(st.integers(0, 2 * n))):
        a, b = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        if a != b:
            links.add((min(a, b), max(a, b)))
    neighbours = {p: sorted({b for a, b in links if a == p} | {a for a, b in links if b == p}) for p in range(n)}
    return n, sorted(links), neighbours


@given(graph=connected_graphs(), order=orders, schedule_seed=st.integers(0, 2**32 - 1), data=st.data())
@settings(max_examples=examples(300))
def test_any_delivery_order_with_duplicates(graph, order, schedule_seed, data):
    rng = random.Random(schedule_seed)
    pick = {"random": rng.randrange, "oldest": lambda k: 0, "newest": lambda k: k - 1}[order]
    n, links, neighbours = graph
    root = data.draw(st.integers(0, n - 1), label="initiator")
    waves = {p: EchoWave(p, neighbours[p], W) for p in range(n)}
    in_flight = [(root, q, m, False) for q, m in waves[root].start(lambda: root).sends]
    decisions = [root] if waves[root].decided else []
    while in_flight:
        src, dst, msg, is_copy = in_flight.pop(pick(len(in_flight)))
        if not is_copy and rng.random() < 0.3:
            in_flight.append((src, dst, msg, True))  # delivered again, some time later
        step = waves[dst].receive(src, msg, lambda: dst)
        if step.decided:
            assert not [m for m in in_flight if not m[3]]  # nothing but copies in flight
            decisions.append(dst)
        in_flight.extend((dst, q, m, False) for q, m in step.sends)
    assert decisions == [root]
    assert sum(w.sent for w in waves.values()) == 2 * len(links)
    entries = waves[root].result
    assert sorted(p for p, _, _ in entries) == list(range(n))
    assert all(state == p for p, _, state in entries)
    for p, father, _ in entries:  # fathers lead to the root without a cycle
        seen = {p}
        while father is not None:
            assert father in neighbours[p] and father not in seen
            seen.add(father)
            p, father = father, waves[father].father
        assert p == root


def FinnWave(me, ins, outs, wave):
    """One node's Finn instance driven event by event, each returning its Step."""
    return StepWave(FinnKind, me, wave, parents=ins, children=outs)


# --- the waves' flags are booleans ------------------------------------------------------------


def test_wave_flags_are_booleans_before_anything_happens():
    echo = EchoWave("p", ["q"], "w")
    assert echo.initiator is False and echo.finished is False
    finn = FinnWave("p", [], ["q"], "w")
    assert finn.started is False and finn.decided is False


# --- echo -----------------------------------------------------------------------------------


def test_a_node_the_wave_has_not_reached_has_sampled_nothing_and_gives_up_on_nothing():
    wave = EchoWave("a", ["b", "c"], "w")
    fresh = (False, False, False, None, None, 0, None)  # nothing sampled, missing, sent or decided
    assert (wave.joined, wave.finished, wave.sampled, wave.state, wave.missing, wave.sent, wave.result) == fresh
    assert wave.give_up() == NOTHING
    assert (wave.joined, wave.finished, wave.sampled, wave.state, wave.missing, wave.sent, wave.result) == fresh


def test_a_decision_is_described_by_how_many_nodes_it_holds():
    """What a trace says of an echo decision (daemon/trace/recorder.py): the entries of
    the result against the cluster's size."""
    assert EchoKind.describe(3, 5) == "decided: 3/5 nodes"


def test_the_kind_starts_at_the_first_source_and_refuses_a_disconnected_network():
    # c -> a, c -> b, d -> b: sources c and d; the first in the graph's order is the initiator
    g = Graph(("a", "b", "c", "d"), (("c", "a"), ("c", "b"), ("d", "b")))
    assert EchoKind.initiators(g) == ("c",)
    assert EchoKind.initiators(g, ("b", "a")) == ("b",)  # one initiator, the first chosen
    cycle = Graph(("x", "y"), (("x", "y"), ("y", "x")))  # no source: the first node
    assert EchoKind.initiators(cycle) == ("x",)
    assert EchoKind.refuse(g) is None
    assert EchoKind.refuse(Graph((), ())) is None
    assert EchoKind.refuse(Graph(("solo",), ())) is None
    # connected only through the undirected view: b -> a <- c
    assert EchoKind.refuse(Graph(("a", "b", "c"), (("b", "a"), ("c", "a")))) is None
    apart = Graph(("a", "b", "c", "d"), (("a", "b"), ("c", "d")))
    assert EchoKind.refuse(apart) == (
        "the echo wave needs a connected network (its undirected view): some nodes cannot be reached"
    )


class _DetailNode(SimNode):
    """A node that records the detail level each sample is taken at."""

    __slots__ = ("details",)

    def __init__(self, me, neighbours):
        super().__init__(me, neighbours=neighbours)
        self.details: list[bool] = []

    def sample(self, detail: bool = False):
        self.details.append(detail)
        return {"node": self.me}


@pytest.mark.parametrize("detail", [False, True])
def test_a_presample_takes_the_detail_the_wave_was_started_with(detail):
    """Lai–Yang's early sample (a hand-off from a node that sampled the wave) is taken at
    the wave's own detail level, as the sample at joining is: a plain echo's entries stay
    plain, a balancing round's list the tasks."""
    for event in ("presample", "start"):
        node = _DetailNode("p", ("q",))
        wave = EchoKind(node, "e-1-x", {"detail": detail})
        getattr(wave, event)()
        assert node.details == [detail], event
