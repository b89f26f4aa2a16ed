"""The tree algorithm (daemon/core/tree.py) in the simulator: on random trees
(tests/sim/wave_nets.py, links oriented at random), every leaf initiating and a random
few inner nodes too, with and without duplicates: exactly N messages, one sent by each
node over a link of the tree, exactly two deciders, neighbours that sent to each other
— by the kind's ``check()`` and again by oracles from the edge list. A leaf left out
may starve the wave but never breaks safety; broken versions must be caught."""

from __future__ import annotations

import random

import pytest

import wave_nets
from daemon.core.tree import TreeMsg, TreeWave
from daemon.core.wave import Graph
from daemon.sim.wave import Refused, simulate_wave


def leaves(graph):
    deg = wave_nets.degree(graph)
    return [n for n in graph.nodes if deg[n] <= 1]


def one(seed: int, kind=TreeWave):
    rng = random.Random(seed)
    graph = wave_nets.tree(rng)
    starters = leaves(graph) + [n for n in graph.nodes if rng.random() < 0.2]
    starters = list(dict.fromkeys(starters))
    rng.shuffle(starters)
    dup = rng.choice((0.0, 0.0, 0.1, 0.4))
    sim = simulate_wave(kind, graph, starters, seed=seed, dup=dup)
    return graph, sim, wave_nets.Hint("tree", graph, seed, starters, dup=dup)


def problems(graph, sim) -> list[str]:
    """The run's violations, then the oracles' objections."""
    run = sim.run
    n = len(graph.nodes)
    found = list(sim.violations)
    sent: dict[str, int] = {}
    for (a, b), k in run.per_channel.items():
        if frozenset((a, b)) not in wave_nets.links(graph):
            found.append(f"oracle: a message {a} -> {b} off the tree")
        sent[a] = sent.get(a, 0) + k
    if not sim.wave_property:
        found.append(f"oracle: a decision before any event at {sim.unpreceded}")
    if n == 1:
        if run.messages != 0 or run.decisions != [(graph.nodes[0], {"with": None})]:
            found.append(f"oracle: a node alone: {run.messages} messages, decisions {run.decisions}")
        return found
    if run.messages != n or sent != {p: 1 for p in graph.nodes}:
        found.append(f"oracle: {run.messages} messages for N = {n}, or a node sent twice or never")
    if len(run.decisions) != 2:
        found.append(f"oracle: {len(run.decisions)} decisions")
        return found
    (a, ra), (b, rb) = run.decisions
    if ra != {"with": b} or rb != {"with": a} or frozenset((a, b)) not in wave_nets.links(graph):
        found.append(f"oracle: deciders {run.decisions} are not two neighbours that chose each other")
    return found


def test_tree_algorithm_on_random_trees():
    for seed in wave_nets.sweep_seeds():
        graph, sim, hint = one(seed)
        assert problems(graph, sim) == [], hint


def test_a_leaf_left_out_breaks_nothing():
    """A leaf the operator does not start sends when its neighbour's message wakes it,
    if that comes: one leaf left out, it always does; two or more may starve the wave.
    Either way no node sends twice or decides wrong."""
    ended = 0
    for seed in range(200):
        rng = random.Random(seed)
        graph = wave_nets.tree(rng, rng.randint(3, 12))
        every = leaves(graph)
        some = [n for n in every[1:] if rng.random() < 0.5]  # at least one leaf left out
        sim = simulate_wave(TreeWave, graph, some, seed=seed)
        assert sim.violations == [], wave_nets.Hint("tree", graph, seed, some)
        assert len(sim.run.decisions) in (0, 2)
        ended += len(sim.run.decisions) == 2
    assert 0 < ended < 200


def test_refuses_a_cycle_naming_its_closing_link():
    graph = Graph(("a", "b", "c"), (("a", "b"), ("b", "c"), ("c", "a")))
    assert TreeWave.refuse(graph) == "not a tree: the link c–a closes a cycle"
    with pytest.raises(Refused, match="tree cannot run on this topology: not a tree"):
        simulate_wave(TreeWave, graph)


def test_a_pair_of_opposite_edges_is_one_link():
    graph = Graph(("a", "b", "c"), (("a", "b"), ("b", "a"), ("c", "b")))
    assert TreeWave.refuse(graph) is None
    sim = simulate_wave(TreeWave, graph)
    assert TreeWave.initiators(graph) == ("a", "c")
    assert sim.violations == [] and sim.run.messages == 3


# --- broken on purpose -------------------------------------------------------------------


class SendsEarly(TreeWave):
    """Sends with two neighbours still unheard (to the first of them)."""

    def _step(self):
        missing = [q for q in self.node.neighbours if q not in self.heard]
        if self.sent_to is None and len(missing) == 2:
            self.sent_to = missing[0]
            self.node.send(missing[0], TreeMsg(self.wave))
        super()._step()


class CountsMessages(TreeWave):
    """Counts messages, not senders: a copy stands in for a neighbour not heard yet."""

    def receive(self, sender, msg):
        self._step()
        missing = [q for q in self.node.neighbours if q not in self.heard]
        if sender in self.heard and missing:
            sender = missing[0]
        self.heard.add(sender)
        self._step()


class EveryoneDecides(TreeWave):
    """A node that has sent and heard from all but its q0 decides too."""

    def _step(self):
        super()._step()
        missing = [q for q in self.node.neighbours if q not in self.heard]
        if self.sent_to is not None and missing == [self.sent_to] and not self.decided:
            self.decided = True
            self.node.decide({"with": self.sent_to})


@pytest.mark.parametrize("broken", [SendsEarly, CountsMessages, EveryoneDecides])
def test_broken_tree_algorithms_are_caught(broken):
    runs = [one(seed, broken) for seed in range(300)]
    by_oracles = sum(bool(problems(*r[:2])) for r in runs)
    by_the_run = sum(bool(r[-2].violations) for r in runs)  # the kind's check() and the harness alone
    assert by_oracles >= 30 and by_the_run >= 30, f"{broken.__name__}: {by_oracles}, {by_the_run} of 300"
