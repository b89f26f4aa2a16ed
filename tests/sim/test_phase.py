"""The phase algorithm (daemon/core/phase.py) in the simulator: on random strongly
connected digraphs (tests/sim/wave_nets.py: ear decompositions, often without a cycle
through every node), D drawn from the diameter up, random initiators, with and without
duplicates: exactly D messages on every edge and none elsewhere, D·|E| in all, every node
deciding once with D — by the kind's ``check()`` and again by oracles from the edge list.
Broken versions must be caught."""

from __future__ import annotations

import random

import pytest

import wave_nets
from daemon.core.phase import PhaseToken, PhaseWave
from daemon.core.wave import Graph
from daemon.errors import BadInput
from daemon.sim.wave import Refused, simulate_wave


def one(seed: int, kind=PhaseWave):
    rng = random.Random(seed)
    graph = wave_nets.strong(rng)
    d = max(1, wave_nets.diameter(graph)) + rng.choice((0, 0, 0, 1, 2))
    starters = [n for n in graph.nodes if rng.random() < 0.3] or [rng.choice(graph.nodes)]
    dup = rng.choice((0.0, 0.0, 0.1, 0.4))
    sim = simulate_wave(kind, graph, starters, {"D": d}, seed=seed, dup=dup)
    return graph, d, sim, wave_nets.Hint("phase", graph, seed, starters, {"D": d}, dup)


def problems(graph, d, sim) -> list[str]:
    """The run's violations, then the oracles' objections."""
    run = sim.run
    found = list(sim.violations)
    if run.per_channel != {e: d for e in graph.edges}:
        found.append(f"oracle: not D = {d} on every edge: {sorted(run.per_channel.items())[:4]}")
    if run.messages != d * len(graph.edges):
        found.append(f"oracle: {run.messages} messages for D·|E| = {d * len(graph.edges)}")
    if sorted(p for p, _ in run.decisions) != sorted(graph.nodes):
        found.append("oracle: not every node decided exactly once")
    if any(r != {"D": d} for _, r in run.decisions):
        found.append(f"oracle: decided with another D: {run.decisions[:3]}")
    if not sim.wave_property:  # D is at least the diameter here
        found.append(f"oracle: a decision before any event at {[u for u in sim.unpreceded if u][:1]}")
    return found


def test_phase_algorithm_on_random_strong_digraphs():
    for seed in wave_nets.sweep_seeds():
        graph, d, sim, hint = one(seed)
        assert problems(graph, d, sim) == [], hint


def test_d_below_the_diameter_is_named():
    ring = Graph(("a", "b", "c", "d"), (("a", "b"), ("b", "c"), ("c", "d"), ("d", "a")))
    sim = simulate_wave(PhaseWave, ring, params={"D": 2})
    assert sim.run.messages == 8
    assert sim.violations == [
        "c decided before any event at d (a wave's decision follows an event at every node)",
        "D = 2 is below the diameter 3: a decision need not follow an event at every node"]
    # from a alone: b sends both rounds on a's first token, so c decides before d did anything
    assert sim.run.decisions[0] == ("c", {"D": 2}) and sim.unpreceded[0] == ("d",)
    enough = simulate_wave(PhaseWave, ring, params={"D": 3})
    assert enough.violations == [] and enough.wave_property


def test_d_is_required_and_bounded():
    ring = Graph(("a", "b"), (("a", "b"), ("b", "a")))
    with pytest.raises(BadInput, match="start parameter D is required"):
        simulate_wave(PhaseWave, ring)
    with pytest.raises(BadInput, match="start parameter D must be 1..1048576, got 0"):
        simulate_wave(PhaseWave, ring, params={"D": 0})
    with pytest.raises(BadInput, match="no start parameter 'd'"):
        simulate_wave(PhaseWave, ring, params={"d": 3})


def test_refuses_a_graph_that_is_not_strongly_connected():
    dag = Graph(("a", "b", "c"), (("a", "b"), ("b", "c"), ("c", "b")))
    assert PhaseWave.refuse(dag) == "not strongly connected: node b has no directed path to node a"
    with pytest.raises(Refused, match="phase cannot run on this topology: not strongly connected"):
        simulate_wave(PhaseWave, dag, params={"D": 3})


# --- broken on purpose -------------------------------------------------------------------


class CountsCopies(PhaseWave):
    """Counts every token, copies included."""

    def receive(self, sender, msg):
        self.got[sender] = 0
        super().receive(sender, msg)


class DecidesOnTotal(PhaseWave):
    """Decides after D·(in-degree) tokens in all, whoever sent them."""

    def _low(self):
        total = sum(self.count.values())
        return min(self.D, total // max(1, len(self.count)))


class OneRoundTooMany(PhaseWave):
    """Sends D + 1 rounds."""

    def _advance(self):
        super()._advance()
        if self.decided and self.sent == self.D:
            self.sent += 1
            for r in self.node.children:
                self.node.send(r, PhaseToken(self.wave, self.D))


@pytest.mark.parametrize("broken", [CountsCopies, DecidesOnTotal, OneRoundTooMany])
def test_broken_phase_algorithms_are_caught(broken):
    runs = [one(seed, broken) for seed in range(300)]
    by_oracles = sum(bool(problems(*r[:3])) for r in runs)
    by_the_run = sum(bool(r[-2].violations) for r in runs)  # the kind's check() and the harness alone
    assert by_oracles >= 30 and by_the_run >= 30, f"{broken.__name__}: {by_oracles}, {by_the_run} of 300"
