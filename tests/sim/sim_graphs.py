"""Generated topologies for the simulation properties, and how a failure is replayed.

A ``GraphCase`` is the drawn description of a topology (shape, node count, edges as
index pairs, file order); its repr is what hypothesis prints for a falsifying example,
so the case can be rebuilt by hand. ``replay_hint`` also writes the topology to a TOML
file and names the ``ctl sim`` command that replays the run.

Shapes:
- ``tree``:   an out-tree (one source, one parent each);
- ``dag``:    a random spanning tree plus extra edges, all oriented by a random rank,
              so there are usually several sources;
- ``strong``: a Hamiltonian cycle through a random permutation plus extra edges;
- ``graph``:  a random spanning tree plus extra edges, oriented at random (cycles,
              several source components, sinks).
Node ``i`` is named ``n<i>``, written to the file in a random order: the simulator
must not assume that file order is a topological order.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
from typing import NamedTuple

from hypothesis import settings
from hypothesis import strategies as st

from budget import examples

from daemon import topology as topo
from daemon.sim.graph import IndexedGraph

SHAPES = ("tree", "dag", "strong", "graph")
MAX_NODES = 60


def profile(n: int) -> settings:
    """The suite's profile (tests/budget.py: randomized under ``ci``, failures print
    their reproduction blob) with ``n`` examples under ``ci``."""
    return settings(max_examples=examples(n))


class GraphCase(NamedTuple):
    shape: str
    n: int
    edges: tuple[tuple[int, int], ...]  # (parent, child) by node number
    order: tuple[int, ...]              # node numbers in file order

    def name(self, i: int) -> str:
        return f"n{i}"

    def topology(self) -> topo.Topology:
        parents: list[list[str]] = [[] for _ in range(self.n)]
        for a, b in self.edges:
            parents[b].append(self.name(a))
        nodes = [{"name": self.name(i), "cpus": 1 + i % 4, "parents": parents[i]} for i in self.order]
        return topo.from_dict({"cluster": {"name": f"case-{self.shape}"}, "node": nodes}, f"<{self.shape} case>")

    def graph(self) -> IndexedGraph:
        return IndexedGraph(self.topology())


def _orient(pairs, rank):
    """Each pair once, as an edge from the lower rank to the higher."""
    out = []
    seen = set()
    for a, b in pairs:
        if a == b:
            continue
        e = (a, b) if rank[a] < rank[b] else (b, a)
        if e not in seen:
            seen.add(e)
            out.append(e)
    return out


def _unique(pairs):
    out, seen = [], set()
    for e in pairs:
        if e[0] != e[1] and e not in seen:
            seen.add(e)
            out.append(e)
    return out


@st.composite
def graph_cases(draw, shapes=SHAPES, min_nodes=2, max_nodes=MAX_NODES) -> GraphCase:
    """At least two nodes: a one-node network exchanges no message, so it would spend
    examples checking nothing (tests/sim/test_sim_echo.py and test_sim_finn.py test it
    as its own case). Hypothesis draws the shape, the size and a structure seed (so it shrinks towards
    small graphs); the edges come from ``random.Random(structure seed)``, which is far
    cheaper than drawing every edge through hypothesis and as reproducible."""
    shape = draw(st.sampled_from(shapes))
    n = draw(st.integers(min_nodes, max_nodes))
    rng = random.Random(draw(st.integers(0, 2**32 - 1), label="structure seed"))
    return make_case(shape, n, rng)


def make_case(shape: str, n: int, rng: random.Random) -> GraphCase:
    order = list(range(n))
    rng.shuffle(order)
    # A random recursive tree: node i links to an earlier node (keeps the view connected).
    tree = [(rng.randrange(i), i) for i in range(1, n)]
    extra_count = 0 if shape == "tree" or n < 2 else rng.randint(0, min(2 * n, 40))
    extra = [(rng.randrange(n), rng.randrange(n)) for _ in range(extra_count)]
    if shape == "tree":
        edges = _orient(tree, list(range(n)))
    elif shape == "dag":
        rank = list(range(n))
        rng.shuffle(rank)
        edges = _orient(tree + extra, rank)
    elif shape == "strong":
        cycle = list(range(n))
        rng.shuffle(cycle)
        ring = [(cycle[i], cycle[(i + 1) % n]) for i in range(n)] if n > 1 else []
        edges = _unique(ring + extra)
    else:
        oriented = [(b, a) if rng.random() < 0.5 else (a, b) for a, b in tree]
        edges = _unique(oriented + extra)
    return GraphCase(shape, n, tuple(edges), tuple(order))


class replay_hint:
    """The ``ctl sim`` command that replays a run, for assertion messages.

    Lazy: ``assert ok, hint`` formats the message only when the check fails, and only
    then is the case's topology written to a file for the command to read.
    """

    def __init__(self, case: GraphCase, wave: str, seed: int, dup: float, extra: str = ""):
        self.case, self.wave, self.seed, self.dup, self.extra = case, wave, seed, dup, extra

    def __str__(self) -> str:
        text = topo.dumps(self.case.topology(), comment=f"{self.case!r}")
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        path = os.path.join(tempfile.gettempdir(), f"echofinn-case-{digest}.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        dup_arg = f" --dup {self.dup}" if self.dup else ""
        return f"replay: ctl sim {self.wave} {path} --seed {self.seed}{dup_arg}{self.extra}"

    __repr__ = __str__
