"""Echo snapshots made up for the renderer's tests and benchmark, seeded.

The shape is what ``Operator.echo`` returns: a topology (a random tree, plus extra DAG
edges when asked), an echo wave's spanning tree over its undirected view (breadth-first
from the initiator, like a wave on a network with equal delays) and random node states.
"""

from __future__ import annotations

import random
from collections import deque

from ctl.top.view import RosterNode

WORDS = (
    "root affixed subserviate nonplus quagmire lantern ferrule tallow mizzen gambit "
    "sorrel cantle bodkin wimple halberd cresset jerkin pommel tabard vellum"
).split()


def names(n: int) -> list[str]:
    return [WORDS[i] if i < len(WORDS) else f"{WORDS[i % len(WORDS)]}{i // len(WORDS)}" for i in range(n)]


def topology(n: int, seed: int = 1, extra_edges: int = 0) -> tuple[RosterNode, ...]:
    """A random tree over ``n`` nodes (node 0 the root), plus ``extra_edges`` DAG edges."""
    rng = random.Random(seed)
    ns = names(n)
    parents: list[list[str]] = [[] for _ in range(n)]
    for i in range(1, n):
        parents[i].append(ns[rng.randrange(max(1, i - 6), i) if i > 6 else rng.randrange(i)])
    for _ in range(extra_edges if n > 2 else 0):
        child = rng.randrange(2, n)
        extra = ns[rng.randrange(child)]
        if extra not in parents[child]:
            parents[child].append(extra)
    return tuple(RosterNode(ns[i], tuple(parents[i]), rng.choice((1, 2, 4, 8))) for i in range(n))


def spanning_fathers(roster, initiator: str) -> dict[str, str | None]:
    """Breadth-first fathers over the undirected view: an echo wave with equal delays."""
    nbrs: dict[str, list[str]] = {r.name: [] for r in roster}
    for r in roster:
        for p in r.parents:
            nbrs[r.name].append(p)
            nbrs[p].append(r.name)
    father: dict[str, str | None] = {initiator: None}
    queue = deque([initiator])
    while queue:
        u = queue.popleft()
        for v in nbrs[u]:
            if v not in father:
                father[v] = u
                queue.append(v)
    return father


def snapshot(roster, seed: int = 1, t: float = 1_764_245_123.4, initiator: str | None = None,
             missing=(), **overrides) -> dict:
    """A snapshot over ``roster``; nodes in ``missing`` did not answer (left out)."""
    rng = random.Random(seed)
    initiator = initiator or roster[0].name
    father = spanning_fathers(roster, initiator)
    nodes = []
    for r in roster:
        if r.name in missing or r.name not in father:
            continue
        cpus = r.cpus or 4
        running = rng.randint(0, cpus)
        queued = rng.randint(0, 2 * cpus) if running == cpus else 0
        nodes.append({
            "name": r.name, "father": father[r.name], "parents": list(r.parents),
            "cpus": cpus, "running": running, "queued": queued, "done": rng.randint(0, 300),
            "submitted": 0, "load": (running + queued) / cpus, "work": float(running + queued),
            "outgoing": [], "unconfirmed": [],
            "cpu_percent": round(rng.random() * 100 * cpus, 1), "pid": 1000 + len(nodes),
        })
    edges = sum(len(r.parents) for r in roster)
    snap = {"cluster": "seed", "wave": f"e-{seed:x}", "initiator": initiator, "messages": 2 * edges,
            "elapsed_ms": 2.1, "time": t, "nodes": nodes}
    snap.update(overrides)
    return snap


def node(**fields) -> dict:
    """One node's entry with defaults."""
    entry = {"name": "n", "father": None, "parents": [], "cpus": 4, "running": 0, "queued": 0, "done": 0,
             "submitted": 0, "cpu_percent": None, "pid": 1, "outgoing": [], "unconfirmed": []}
    entry.update(fields)
    entry.setdefault("work", float(entry["running"] + entry["queued"]))  # tasks of 1 s
    entry.setdefault("load", (entry["running"] + entry["queued"]) / entry["cpus"])
    return entry
