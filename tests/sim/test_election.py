"""Chang–Roberts election (daemon/core/election.py) in the simulator: on random directed
rings (tests/sim/wave_nets.py), from every node or a random subset (the rest wake on the
first token), with and without duplicates: exactly one leader, the largest name, and
exactly the messages the arrangement implies — counted here by walking each id round the
ring, independently of the kind's own count — between 2N − 1 and N(N + 1)/2. Both bounds
are reached, on rings arranged for them; broken versions must be caught."""

from __future__ import annotations

import random

import pytest

import wave_nets
from daemon.core.election import ElectionToken, ElectionWave
from daemon.core.wave import Graph
from daemon.sim.wave import Refused, simulate_wave


def walk_count(order: list[str]) -> int:
    """Messages of Chang–Roberts on the ring order[0] -> order[1] -> ... -> order[0]:
    each id goes until a larger one swallows it, the largest all the way round."""
    n = len(order)
    if n == 1:
        return 0
    total = 0
    for i, p in enumerate(order):
        hops = 1
        while order[(i + hops) % n] < p:
            hops += 1
        total += hops
    return total


def ring_order(graph: Graph) -> list[str]:
    nxt = dict(graph.edges)
    order = [graph.nodes[0]]
    while len(order) < len(graph.nodes):
        order.append(nxt[order[-1]])
    return order


def ring_of(names: list[str]) -> Graph:
    n = len(names)
    return Graph(tuple(names), tuple((names[i], names[(i + 1) % n]) for i in range(n)) if n > 1 else ())


def one(seed: int, kind=ElectionWave):
    rng = random.Random(seed)
    graph = wave_nets.ring(rng)
    starters = list(graph.nodes) if rng.random() < 0.5 else [n for n in graph.nodes if rng.random() < 0.3]
    starters = starters or [rng.choice(graph.nodes)]
    dup = rng.choice((0.0, 0.0, 0.1, 0.4))
    sim = simulate_wave(kind, graph, starters, seed=seed, dup=dup)
    return graph, sim, wave_nets.Hint("election", graph, seed, starters, dup=dup)


def problems(graph, sim) -> list[str]:
    """The run's violations, then the oracles' objections."""
    run = sim.run
    n = len(graph.nodes)
    found = list(sim.violations)
    top = max(graph.nodes)
    if run.decisions != [(top, {"leader": top})]:
        found.append(f"oracle: decisions {run.decisions[:3]}, expected only {top} as leader")
    expected = walk_count(ring_order(graph))
    if run.messages != expected:
        found.append(f"oracle: {run.messages} messages, the ring implies {expected}")
    if n > 1 and not 2 * n - 1 <= run.messages <= n * (n + 1) // 2:
        found.append(f"oracle: {run.messages} messages outside 2N-1 .. N(N+1)/2")
    if set(run.per_channel) - set(graph.edges):
        found.append("oracle: a message off the ring")
    if not sim.wave_property:
        found.append("oracle: the leader decided before an event at every node")
    return found


def test_election_on_random_rings():
    for seed in wave_nets.sweep_seeds():
        graph, sim, hint = one(seed)
        assert problems(graph, sim) == [], hint


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 21, 34])
def test_best_and_worst_case_are_reached(n):
    """Ids rising along the ring: every id but the largest dies at its first hop, 2N − 1
    messages. Falling: the id of rank i travels i hops, N(N + 1)/2. (A node alone: none.)"""
    names = [f"p{i:03d}" for i in range(n)]
    for order, expected in ((names, 2 * n - 1), (names[::-1], n * (n + 1) // 2)):
        for seed in range(5):
            sim = simulate_wave(ElectionWave, ring_of(order), seed=seed, dup=0.2 * (seed % 2))
            assert sim.violations == []
            assert sim.run.messages == (expected if n > 1 else 0)
            assert sim.run.decisions == [(names[-1], {"leader": names[-1]})]


def test_refuses_what_is_not_a_ring_by_node():
    fork = Graph(("a", "b", "c"), (("a", "b"), ("a", "c"), ("b", "a"), ("c", "a")))
    assert ElectionWave.refuse(fork) == ("not a ring: node a has 2 children (b, c); "
                                         "on a directed ring each node has exactly one")
    two = Graph(("a", "b", "c", "d"), (("a", "b"), ("b", "a"), ("c", "d"), ("d", "c")))
    assert ElectionWave.refuse(two) == "not a ring: node c is not on the cycle through node a (2 of 4 nodes)"
    with pytest.raises(Refused, match="election cannot run on this topology: not a ring: node a"):
        simulate_wave(ElectionWave, fork)


# --- broken on purpose -------------------------------------------------------------------


class ForwardsSmaller(ElectionWave):
    """Forwards every id but its own, smaller ones too."""

    def receive(self, sender, msg):
        self._wake()
        if msg.id != self.node.me and msg.id < self.node.me and msg.id not in self.forwarded:
            self.forwarded.add(msg.id)
            self.node.send(self.node.children[0], ElectionToken(self.wave, msg.id))
            return
        super().receive(sender, msg)


class ForgetsWhatItForwarded(ElectionWave):
    """Forwards every copy of a larger id again."""

    def receive(self, sender, msg):
        self.forwarded.clear()
        super().receive(sender, msg)


class LateStarterStaysSilent(ElectionWave):
    """A node woken by a token never announces its own id."""

    def receive(self, sender, msg):
        self.awake = True
        super().receive(sender, msg)


@pytest.mark.parametrize("broken", [ForwardsSmaller, ForgetsWhatItForwarded, LateStarterStaysSilent])
def test_broken_elections_are_caught(broken):
    runs = [one(seed, broken) for seed in range(300)]
    by_oracles = sum(bool(problems(*r[:2])) for r in runs)
    by_the_run = sum(bool(r[-2].violations) for r in runs)  # the kind's check() and the harness alone
    assert by_oracles >= 30 and by_the_run >= 30, f"{broken.__name__}: {by_oracles}, {by_the_run} of 300"
