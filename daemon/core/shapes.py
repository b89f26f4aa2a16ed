"""What the wave kinds ask of a :class:`~daemon.core.wave.Graph`: the undirected view's
links, and why a graph is not connected, not a tree, not a directed ring or not strongly
connected — a sentence naming the offending node or link, or None.

Theory of operation: every function is linear in the graph's size (union-find, one
breadth-first search each way) except :func:`diameter`, a breadth-first search from every
node (O(N·E)), which the phase algorithm's check runs only on graphs of up to
:data:`DIAMETER_MAX_NODES` nodes. Every order is the graph's node order or its edge
order, never a set's iteration order, so the sentences are the same in every process.
"""

from __future__ import annotations

from collections import deque

from .wave import Graph

DIAMETER_MAX_NODES = 2000


def links(graph: Graph) -> list[tuple[str, str]]:
    """The links of the undirected view, each once, in edge order (a pair of opposite
    edges is one link)."""
    seen: set[frozenset[str]] = set()
    out = []
    for a, b in graph.edges:
        key = frozenset((a, b))
        if key not in seen:
            seen.add(key)
            out.append((a, b))
    return out


def _reach(start: str, step: dict[str, list[str]]) -> set[str]:
    seen = {start}
    todo = deque([start])
    while todo:
        p = todo.popleft()
        for q in step[p]:
            if q not in seen:
                seen.add(q)
                todo.append(q)
    return seen


def _adjacency(graph: Graph, forward: bool = True, backward: bool = True) -> dict[str, list[str]]:
    step: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        if forward:
            step[a].append(b)
        if backward:
            step[b].append(a)
    return step


def not_connected(graph: Graph) -> str | None:
    """Why the undirected view is not connected (naming a node the first cannot reach)."""
    if not graph.nodes:
        return "no nodes"
    first = graph.nodes[0]
    seen = _reach(first, _adjacency(graph))
    for n in graph.nodes:
        if n not in seen:
            return f"not connected: node {n} is not linked to node {first} by any path"
    return None


def not_a_tree(graph: Graph) -> str | None:
    """Why the undirected view is not a tree: the first link (in edge order) that closes
    a cycle, or a node the first cannot reach."""
    leader = {n: n for n in graph.nodes}

    def find(x: str) -> str:
        while leader[x] != x:
            leader[x] = leader[leader[x]]
            x = leader[x]
        return x

    for a, b in links(graph):
        ra, rb = find(a), find(b)
        if ra == rb:
            return f"not a tree: the link {a}–{b} closes a cycle"
        leader[ra] = rb
    reason = not_connected(graph)
    return None if reason is None else "not a tree: " + reason.removeprefix("not connected: ")


def not_a_ring(graph: Graph) -> str | None:
    """Why the graph is not one directed cycle through every node (a node alone, with no
    edge, counts as a ring of one)."""
    if len(graph.nodes) == 1 and not graph.edges:
        return None
    nxt: dict[str, list[str]] = {n: [] for n in graph.nodes}
    prv: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        nxt[a].append(b)
        prv[b].append(a)
    for n in graph.nodes:
        if len(nxt[n]) != 1:
            what = "no child" if not nxt[n] else f"{len(nxt[n])} children ({', '.join(nxt[n])})"
            return f"not a ring: node {n} has {what}; on a directed ring each node has exactly one"
        if len(prv[n]) != 1:
            what = "no parent" if not prv[n] else f"{len(prv[n])} parents ({', '.join(prv[n])})"
            return f"not a ring: node {n} has {what}; on a directed ring each node has exactly one"
    first = graph.nodes[0]
    on_cycle = {first}
    p = nxt[first][0]
    while p != first:
        on_cycle.add(p)
        p = nxt[p][0]
    for n in graph.nodes:
        if n not in on_cycle:
            return (
                f"not a ring: node {n} is not on the cycle through node {first} "
                f"({len(on_cycle)} of {len(graph.nodes)} nodes)"
            )
    return None


def not_strongly_connected(graph: Graph) -> str | None:
    """Why the directed graph is not strongly connected: a node the first node cannot
    reach, or one that cannot reach it."""
    if not graph.nodes:
        return "no nodes"
    first = graph.nodes[0]
    down = _reach(first, _adjacency(graph, backward=False))
    for n in graph.nodes:
        if n not in down:
            return f"not strongly connected: node {first} has no directed path to node {n}"
    up = _reach(first, _adjacency(graph, forward=False))
    for n in graph.nodes:
        if n not in up:
            return f"not strongly connected: node {n} has no directed path to node {first}"
    return None


def diameter(graph: Graph) -> int | None:
    """The longest shortest directed path (0 for one node), None when some node cannot
    reach another or the graph has more than :data:`DIAMETER_MAX_NODES` nodes."""
    if len(graph.nodes) > DIAMETER_MAX_NODES:
        return None
    step = _adjacency(graph, backward=False)
    longest = 0
    for start in graph.nodes:
        dist = {start: 0}
        todo = deque([start])
        while todo:
            p = todo.popleft()
            for q in step[p]:
                if q not in dist:
                    dist[q] = dist[p] + 1
                    todo.append(q)
        if len(dist) < len(graph.nodes):
            return None
        longest = max(longest, max(dist.values()))
    return longest
