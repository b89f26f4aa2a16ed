"""Tarry's traversal (daemon/core/tarry.py) in the simulator: on random connected
networks (tests/sim/wave_nets.py), from a random initiator, with and without the
network's duplicates, exactly 2|E| messages, each directed channel of the undirected
view once, one token in flight at a time, every node reached, one decision at the
initiator — checked by the kind's ``check()`` and again by oracles from the edge list.
Broken traversals must be caught."""

from __future__ import annotations

import random

import pytest

import wave_nets
from daemon.core.tarry import TarryToken, TarryWave
from daemon.core.wave import Graph
from daemon.sim.wave import Refused, simulate_wave


def one(seed: int, kind=TarryWave):
    rng = random.Random(seed)
    graph = wave_nets.connected(rng)
    root = rng.choice(graph.nodes)
    dup = rng.choice((0.0, 0.0, 0.1, 0.4))
    sim = simulate_wave(kind, graph, [root], seed=seed, dup=dup)
    return graph, root, sim, wave_nets.Hint("tarry", graph, seed, [root], dup=dup)


def problems(graph, root, sim) -> list[str]:
    """The run's violations, then the oracles' objections."""
    run = sim.run
    found = list(sim.violations)
    view = wave_nets.links(graph)
    channels = {(a, b) for a, b in graph.edges} | {(b, a) for a, b in graph.edges}
    if run.per_channel != {c: 1 for c in channels}:
        found.append(f"oracle: not once on each directed channel: {sorted(run.per_channel.items())[:4]}")
    if run.messages != 2 * len(view):
        found.append(f"oracle: {run.messages} messages for 2|E| = {2 * len(view)}")
    if sim.max_in_flight != (1 if view else 0):
        found.append(f"oracle: {sim.max_in_flight} tokens in flight at once")
    if run.decisions != [(root, {"hops": 2 * len(view)})]:
        found.append(f"oracle: decisions {run.decisions}")
    if run.reached != set(graph.nodes):
        found.append("oracle: not every node reached")
    if not sim.wave_property:
        found.append(f"oracle: a decision before any event at {sim.unpreceded}")
    if not sim.dup and sim.decision_times and sim.decision_times[0] != sim.time:
        found.append("oracle: events after the decision")  # with no copies, the decision is the last
    return found


def test_tarry_on_random_networks():
    for seed in wave_nets.sweep_seeds():
        graph, root, sim, hint = one(seed)
        assert problems(graph, root, sim) == [], hint


def test_a_node_alone_decides_at_once():
    sim = simulate_wave(TarryWave, Graph(("a",), ()), ["a"])
    assert sim.violations == [] and sim.run.messages == 0 and sim.run.decisions == [("a", {"hops": 0})]


def test_two_initiators_are_refused():
    from daemon.errors import BadInput

    with pytest.raises(BadInput, match="one initiator, got 2"):
        simulate_wave(TarryWave, Graph(("a", "b"), (("a", "b"),)), ["a", "b"])


def test_a_graph_in_two_pieces_is_refused_by_name():
    graph = Graph(("a", "b", "c", "d"), (("a", "b"), ("c", "d")))
    assert TarryWave.refuse(graph) == "not connected: node c is not linked to node a by any path"
    with pytest.raises(Refused, match="tarry cannot run on this topology: not connected: node c"):
        simulate_wave(TarryWave, graph)


# --- broken on purpose -------------------------------------------------------------------


class FatherFirst(TarryWave):
    """Breaks R2: sends the token back to its father as soon as that channel is unused."""

    def _forward(self, hops):
        node = self.node
        if self.father not in self.used and self.father != node.me:
            self.used.add(self.father)
            self.hops = hops + 1
            node.send(self.father, TarryToken(self.wave, hops + 1))
            return
        super()._forward(hops)


class NoHopCount(TarryWave):
    """Treats every token as new: the network's copies move a second token."""

    def receive(self, sender, msg):
        self.hops = msg.hops - 1
        super().receive(sender, msg)


class DecidesOnReturn(TarryWave):
    """The initiator decides the first time the token comes back."""

    def receive(self, sender, msg):
        if self.father == self.node.me and not self.done:
            self.done = True
            self.node.decide({"hops": msg.hops})
            return
        super().receive(sender, msg)


@pytest.mark.parametrize("broken", [FatherFirst, NoHopCount, DecidesOnReturn])
def test_broken_traversals_are_caught(broken):
    runs = [one(seed, broken) for seed in range(300)]
    by_oracles = sum(bool(problems(*r[:3])) for r in runs)
    by_the_run = sum(bool(r[-2].violations) for r in runs)  # the kind's check() and the harness alone
    assert by_oracles >= 30 and by_the_run >= 30, f"{broken.__name__}: {by_oracles}, {by_the_run} of 300"
