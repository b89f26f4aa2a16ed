"""The most-loaded election in echofinn's simulator, over many random networks: the
winner is the node with the largest (load, name), in exactly 2|E| messages, decided
once at the initiator, whatever the delays and duplicates."""

from __future__ import annotations

import random

import pytest
from mostloaded import MostLoaded

from daemon.core.wave import Graph
from daemon.sim.wave import simulate_wave
from daemon.topogen import SHAPES, generate

NETWORKS = 300


def random_case(seed: int) -> tuple[Graph, dict[str, dict], str]:
    rng = random.Random(seed)
    n = rng.randint(1, 40)
    graph = Graph.of(generate(n, rng.choice(SHAPES), seed))
    # loads from a small set, so that ties (broken by the larger name) come up often
    samples = {name: {"load": rng.choice([0.0, 0.5, 1.0, 2.0, 3.5])} for name in graph.nodes}
    return graph, samples, rng.choice(graph.nodes)


@pytest.mark.parametrize("dup", [0.0, 0.3])
def test_the_most_loaded_node_wins_on_every_network(dup):
    for seed in range(NETWORKS):
        graph, samples, initiator = random_case(seed)
        sim = simulate_wave(MostLoaded, graph, [initiator], seed=seed, dup=dup, samples=samples)
        replay = f"network seed {seed}, dup {dup}"
        assert sim.violations == [], replay
        best = max((samples[n]["load"], n) for n in graph.nodes)
        assert sim.run.decisions == [(initiator, {"node": best[1], "load": best[0]})], replay
        assert sim.run.reached == set(graph.nodes), replay


def test_the_checks_catch_a_wave_that_echoes_too_early():
    """Broken on purpose: a node reports to its father as soon as it joins. The kind's own
    check() must see the wrong message count or a wrong decision on some network."""

    class Hasty(MostLoaded):
        def _finish_if_heard_all(self) -> None:
            if not self.done and self.joined:
                self._finish()

    caught = 0
    for seed in range(100):
        graph, samples, initiator = random_case(seed)
        sim = simulate_wave(Hasty, graph, [initiator], seed=seed, samples=samples)
        best = max((samples[n]["load"], n) for n in graph.nodes)
        if sim.violations or sim.run.decisions != [(initiator, {"node": best[1], "load": best[0]})]:
            caught += 1
    assert caught >= 50
