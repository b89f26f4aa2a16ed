"""Random networks for the wave kinds' property tests (tests/sim/test_tarry.py,
test_tree.py, test_phase.py, test_election.py), and how a failure is replayed.

A sweep runs :func:`sweep_seeds` networks: ``examples(2000)`` under the profile
(tests/budget.py), from a base seed drawn afresh every run under ``ci`` and ``long`` and
fixed under ``mutation`` (whose runs must draw the same). Network ``seed`` is built from
``random.Random(seed)`` alone and simulated with the same seed, so one integer names a
case; the assertion message (:class:`Hint`) writes the network to a TOML file and gives
the ``ctl sim wave`` command that replays the run.

Shapes, each over nodes named ``n0 .. n{N-1}`` listed in a random order:

- :func:`tree`: a random recursive tree, each link oriented at random (now and then as
  a pair of opposite edges, which the undirected view counts once);
- :func:`connected`: the same plus random extra links: cycles, any degree;
- :func:`ring`: one directed cycle through a random permutation (so ids rise and fall
  along it in every pattern);
- :func:`strong`: an ear decomposition — a cycle through some nodes, then paths of new
  nodes from a node of the graph to a node of the graph — plus random chords: strongly
  connected, and often with no cycle through every node.

Sizes: 1 and 2 often (the degenerate cases), then mostly 3..16, now and then up to 40.
Oracles here are computed from the edge list, never from daemon/core/shapes.py.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
from collections import deque

from budget import PROFILE, examples

from daemon import topology as topo
from daemon.core.wave import Graph

NETWORKS = 2000


def sweep_seeds(n: int = NETWORKS) -> range:
    base = 0 if PROFILE == "mutation" else random.SystemRandom().randrange(1 << 40)
    return range(base, base + examples(n))


def size(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.08:
        return 1
    if roll < 0.16:
        return 2
    if roll < 0.94:
        return rng.randint(3, 16)
    return rng.randint(17, 40)


def _graph(rng: random.Random, n: int, edges: list[tuple[int, int]]) -> Graph:
    order = list(range(n))
    rng.shuffle(order)
    names = [f"n{i}" for i in range(n)]
    unique = {(a, b) for a, b in edges if a != b}
    # edges in the order Graph.of gives a topology file's (by child, then parent, in node
    # order), so that the network written for the replay command runs exactly as here
    at = {node: k for k, node in enumerate(order)}
    out = sorted(unique, key=lambda e: (at[e[1]], at[e[0]]))
    return Graph(tuple(names[i] for i in order), tuple((names[a], names[b]) for a, b in out))


def _oriented(rng: random.Random, pairs) -> list[tuple[int, int]]:
    out = []
    for a, b in pairs:
        roll = rng.random()
        if roll < 0.1:
            out += [(a, b), (b, a)]
        else:
            out.append((a, b) if roll < 0.55 else (b, a))
    return out


def tree(rng: random.Random, n: int | None = None) -> Graph:
    n = size(rng) if n is None else n
    return _graph(rng, n, _oriented(rng, [(rng.randrange(i), i) for i in range(1, n)]))


def connected(rng: random.Random, n: int | None = None) -> Graph:
    n = size(rng) if n is None else n
    pairs = [(rng.randrange(i), i) for i in range(1, n)]
    if n > 1:
        pairs += [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randint(0, 2 * n))]
    return _graph(rng, n, _oriented(rng, pairs))


def ring(rng: random.Random, n: int | None = None) -> Graph:
    n = size(rng) if n is None else n
    cycle = list(range(n))
    rng.shuffle(cycle)
    return _graph(rng, n, [(cycle[i], cycle[(i + 1) % n]) for i in range(n)] if n > 1 else [])


def strong(rng: random.Random, n: int | None = None) -> Graph:
    n = size(rng) if n is None else n
    if n == 1:
        return _graph(rng, 1, [])
    first = rng.randint(2, n)
    edges = [(i, (i + 1) % first) for i in range(first)]
    used = first
    while used < n:  # an ear: from an old node through new nodes to an old node
        length = rng.randint(1, n - used)
        path = [rng.randrange(used), *range(used, used + length), rng.randrange(used)]
        edges += list(zip(path, path[1:]))
        used += length
    edges += [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randint(0, n))]
    return _graph(rng, n, edges)


# --- oracles from the edge list ---------------------------------------------------


def links(graph: Graph) -> set[frozenset[str]]:
    return {frozenset(e) for e in graph.edges}


def degree(graph: Graph) -> dict[str, int]:
    out = {n: 0 for n in graph.nodes}
    for link in links(graph):
        for n in link:
            out[n] += 1
    return out


def diameter(graph: Graph) -> int:
    out = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        out[a].append(b)
    worst = 0
    for s in graph.nodes:
        dist = {s: 0}
        todo = deque([s])
        while todo:
            p = todo.popleft()
            for q in out[p]:
                if q not in dist:
                    dist[q] = dist[p] + 1
                    todo.append(q)
        assert len(dist) == len(graph.nodes), "not strongly connected"
        worst = max(worst, *dist.values())
    return worst


# --- replay -------------------------------------------------------------------------


def topology_of(graph: Graph, label: str) -> topo.Topology:
    parents = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        parents[b].append(a)
    nodes = [{"name": n, "cpus": 1, "parents": parents[n]} for n in graph.nodes]
    return topo.from_dict({"cluster": {"name": "wave-case"}, "node": nodes}, f"<{label}>")


class Hint:
    """The ``ctl sim wave`` command that replays a run, for assertion messages. Lazy:
    the network is written to a file only when the message is formatted."""

    def __init__(self, kind: str, graph: Graph, seed: int, initiators=(), params=None, dup: float = 0.0):
        self.kind, self.graph, self.seed = kind, graph, seed
        self.initiators, self.params, self.dup = tuple(initiators), dict(params or {}), dup

    def __str__(self) -> str:
        text = topo.dumps(topology_of(self.graph, f"{self.kind} case, seed {self.seed}"),
                          comment=f"{self.kind} case, network seed {self.seed}")
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        path = os.path.join(tempfile.gettempdir(), f"echofinn-wave-{digest}.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        words = [f"ctl sim wave {self.kind} {path} --seed {self.seed}"]
        if self.initiators:
            words.append("--from " + ",".join(self.initiators))
        words += [f"--param {k}={v}" for k, v in self.params.items()]
        if self.dup:
            words.append(f"--dup {self.dup!r}")
        return f"network seed {self.seed}; replay: " + " ".join(words)

    __repr__ = __str__
