"""Independent oracles for the simulator's properties, computed from a plain edge list
of node names — never from daemon.sim's IndexedGraph, its ``ancestors()`` or the run's
own ``problems()``, so that a bug shared by the simulator's index and its checks cannot
hide itself.

``edges`` is a list of ``(parent, child)`` name pairs: :func:`case_edges` builds it from
a drawn GraphCase (tests/sim/sim_graphs.py), :func:`topology_edges` from the ``parents``
lists of a topology's nodes as written.
"""

from __future__ import annotations


def case_edges(case) -> list[tuple[str, str]]:
    return [(case.name(a), case.name(b)) for a, b in case.edges]


def topology_edges(topology) -> list[tuple[str, str]]:
    return [(parent, node.name) for node in topology.nodes for parent in node.parents]


def links(edges) -> set[frozenset[str]]:
    """The undirected view's links (a pair of opposite edges is one link)."""
    return {frozenset(e) for e in edges}


def degrees(names, edges) -> dict[str, int]:
    """Neighbours of each node in the undirected view."""
    out = {name: 0 for name in names}
    for link in links(edges):
        for name in link:
            out[name] += 1
    return out


def channels(edges) -> set[tuple[str, str]]:
    """Directed channels of the undirected view: both directions of every link."""
    return {(a, b) for a, b in edges} | {(b, a) for a, b in edges}


def ancestors(names, edges) -> dict[str, set[str]]:
    """Each node with every node that has a directed path to it (itself included),
    by a fixpoint over the edge list: the closure grows until nothing changes."""
    above = {name: {name} for name in names}
    changed = True
    while changed:
        changed = False
        for parent, child in edges:
            if not above[parent] <= above[child]:
                above[child] |= above[parent]
                changed = True
    return above


def source_components(names, edges) -> list[set[str]]:
    """The strongly connected components that no edge enters from outside (Finn needs
    one initiator in each): two nodes share a component when each is the other's
    ancestor."""
    above = ancestors(names, edges)
    components: list[set[str]] = []
    placed: set[str] = set()
    for name in names:
        if name in placed:
            continue
        component = {m for m in above[name] if name in above[m]}
        placed |= component
        if all(above[m] <= component for m in component):
            components.append(component)
    return components
