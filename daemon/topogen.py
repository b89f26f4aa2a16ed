"""Random topologies for experiments, demos and the simulator: ``generate(n, shape, seed)``.

Theory of operation:

A run is a seed (as in TigerBeetle's VOPR): the same arguments give the same topology,
byte for byte once written. Every random choice comes from a ``random.Random`` seeded
from the seed and one concern — names, edges, cpus — so that changing the cpu range does
not rename nodes or move edges. The global ``random`` is never touched.

Shapes (nodes are numbered in file order; an edge always goes parent -> child):

- ``tree``: a random out-tree. Node i takes its parent uniformly among the earlier
  nodes that still have fewer than ``max_children`` children. Bounding the fan-out and
  choosing among all open nodes (not just the newest) keeps the tree bushy, like a
  random recursive tree: depth O(log n).
- ``dag``: the same tree process over nodes 1 + n // 20 onward, the first 1 + n // 20
  nodes being roots (so big DAGs have several sources, each one a Finn initiator),
  plus, for about a quarter of the nodes, one extra parent among the earlier nodes.
  Parents always come earlier in file order, so there is no cycle. Pieces left apart
  (a root nobody chose) are joined by giving their last node a parent in the first
  piece. From n = 3 on, at least one node has two parents, so the result is never
  merely a tree.
- ``ring``: a directed cycle 0 -> 1 -> ... -> n-1 -> 0.
- ``strong``: the ring plus about n/2 random chords: strongly connected, with cycles of
  many lengths, so Finn waves (Finn 1979; Tel 6.2.6) meet each other's sets.

One node alone is one node with no edges, whatever the shape (no self-loops).

Names are distinct English words from ``daemon/words.txt`` (20,000 of them, from
Webster's 2nd); past that, words repeat with a numeric suffix (``word-2``, ``word-3``).
Ports run from ``base_port`` upward, and each node's operator port (daemon/topology.py)
the same number of ports above (``operator_port_offset``): the nodes take the lower half
of the ports from ``base_port`` to 65535, their operator ports the upper; nodes past the
lower half continue on the next loopback address (127.0.0.2, ...), which Linux routes to
this machine, so even 100,000-node files (for the simulator) stay valid.
"""

from __future__ import annotations

from bisect import bisect_left
from functools import lru_cache
from importlib import resources
from random import Random

from daemon.errors import BadInput
from daemon.topology import DEFAULT_HOST, Cluster, Node, Topology

SHAPES = ("tree", "dag", "ring", "strong")

EXTRA_ROOT_EVERY = 20       # dag: one more source per this many nodes
EXTRA_PARENT_CHANCE = 0.25  # dag: share of nodes that get a second parent
CHORDS_PER_NODE = 0.5       # strong: chords added per node


@lru_cache(maxsize=1)
def words() -> tuple[str, ...]:
    """The shipped word list, in file order (sorted)."""
    text = resources.files("daemon").joinpath("words.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line and not line.startswith("#"))


def node_names(n: int, rng: Random) -> list[str]:
    """n distinct names: the word list shuffled, then again with -2, -3, ... suffixes."""
    pool = list(words())
    rng.shuffle(pool)
    if n <= len(pool):
        return pool[:n]
    return [pool[i % len(pool)] + (f"-{i // len(pool) + 1}" if i >= len(pool) else "") for i in range(n)]


def generate(
    n: int,
    shape: str,
    seed: int,
    max_children: int = 3,
    cpus: tuple[int, int] = (1, 8),
    name: str | None = None,
    base_port: int = 7100,
) -> Topology:
    """A random topology of ``n`` nodes of the given shape. Raises ``BadInput`` for
    arguments out of range."""
    _check_arguments(n, shape, max_children, cpus, base_port)
    parents = _EDGES[shape](n, Random(f"{seed}/{shape}/edges"), max_children)
    names = node_names(n, Random(f"{seed}/names"))
    cpu_rng = Random(f"{seed}/cpus")
    lo, hi = cpus
    # Each node needs two ports (its inbox and its operator port, daemon/topology.py): the
    # nodes take the first half of a host's ports from base_port, their operator ports
    # the second; past that, the next loopback address: 127.0.0.2, 127.0.0.3...
    span = max(1, (65536 - base_port) // 2)
    per_host = min(n, span)
    nodes = []
    for i in range(n):
        lap, offset = divmod(i, per_host)
        host = DEFAULT_HOST if lap == 0 else f"127.0.{(lap + 1) // 256}.{(lap + 1) % 256}"
        nodes.append(Node(
            name=names[i],
            cpus=cpu_rng.randint(lo, hi),
            parents=tuple(names[j] for j in parents[i]),
            host=host,
            port=base_port + offset,
            tasks=0,
        ))
    cluster = Cluster(name=name or f"{shape}{n}", host=DEFAULT_HOST, base_port=base_port, operator_port_offset=per_host)
    return Topology(cluster, nodes, source=f"<generated {shape} n={n} seed={seed}>")


def _check_arguments(n: int, shape: str, max_children: int, cpus: tuple[int, int], base_port: int) -> None:
    if shape not in SHAPES:
        raise BadInput(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
    if not isinstance(n, int) or n < 1:
        raise BadInput(f"the number of nodes must be at least 1, got {n!r}")
    if not isinstance(max_children, int) or max_children < 1:
        raise BadInput(f"max_children must be at least 1, got {max_children!r}")
    lo, hi = cpus
    if not (isinstance(lo, int) and isinstance(hi, int)) or lo < 1 or lo > hi:
        raise BadInput(f"cpus must be a range MIN-MAX with 1 <= MIN <= MAX, got {lo}-{hi}")
    if not isinstance(base_port, int) or not 1 <= base_port <= 65534:
        raise BadInput(f"base_port must be a port 1..65534 (each node needs two), got {base_port!r}")
    if n > (65536 - base_port) // 2 * 255:
        raise BadInput(f"{n} nodes do not fit on the loopback addresses from base_port {base_port}; "
                       f"at most {(65536 - base_port) // 2 * 255}")


# -- edges: for each node, the indices of its parents (always in file order) ---------------


def _tree_parents(n: int, rng: Random, max_children: int, first: int = 1) -> list[list[int]]:
    """Nodes ``first``.. each pick a parent among earlier open nodes (fewer than
    max_children children). Nodes before ``first`` are roots and start open."""
    parents: list[list[int]] = [[] for _ in range(n)]
    open_nodes = list(range(min(first, n)))
    children = [0] * n
    for i in range(first, n):
        k = rng.randrange(len(open_nodes))
        p = open_nodes[k]
        parents[i].append(p)
        children[p] += 1
        if children[p] == max_children:
            open_nodes[k] = open_nodes[-1]  # swap-remove: O(1)
            open_nodes.pop()
        open_nodes.append(i)
    return parents


def _dag_parents(n: int, rng: Random, max_children: int) -> list[list[int]]:
    roots = 1 + n // EXTRA_ROOT_EVERY
    parents = _tree_parents(n, rng, max_children, first=roots)
    for i in range(max(2, roots), n):  # the roots stay roots
        if rng.random() < EXTRA_PARENT_CHANCE:
            _add_extra_parent(parents, i, rng)
    _join_pieces(parents, rng)
    if n >= 3 and all(len(p) < 2 for p in parents):
        _add_extra_parent(parents, n - 1, rng)
    for p in parents:
        p.sort()
    return parents


def _add_extra_parent(parents: list[list[int]], i: int, rng: Random) -> None:
    """Give node i one more parent among the earlier nodes, if one is left."""
    if len(parents[i]) >= i:
        return  # already a child of every earlier node
    while True:
        q = rng.randrange(i)
        if q not in parents[i]:
            parents[i].append(q)
            return


def _join_pieces(parents: list[list[int]], rng: Random) -> None:
    """Weakly connect the DAG: the last node of every piece other than node 0's takes a
    parent among the earlier nodes of node 0's piece (earlier, so no cycle appears)."""
    n = len(parents)
    leader = list(range(n))

    def find(x: int) -> int:
        while leader[x] != x:
            leader[x] = leader[leader[x]]
            x = leader[x]
        return x

    for child, ps in enumerate(parents):
        for p in ps:
            leader[find(child)] = find(p)
    last: dict[int, int] = {}
    for v in range(n):
        last[find(v)] = v  # v rises, so this ends as the piece's last node
    main_piece = find(0)
    main_members = [v for v in range(n) if find(v) == main_piece]  # sorted
    for piece_leader, v in sorted(last.items(), key=lambda kv: kv[1]):
        if piece_leader == main_piece:
            continue
        # a member of node 0's piece that comes before v (node 0 always does)
        below = bisect_left(main_members, v)
        parents[v].append(main_members[rng.randrange(below)])


def _ring_parents(n: int, rng: Random, max_children: int) -> list[list[int]]:
    if n == 1:
        return [[]]
    return [[(i - 1) % n] for i in range(n)]


def _strong_parents(n: int, rng: Random, max_children: int) -> list[list[int]]:
    parents = _ring_parents(n, rng, max_children)
    if n < 3:
        return parents  # every possible edge is already there
    for _ in range(int(n * CHORDS_PER_NODE)):
        u, v = rng.randrange(n), rng.randrange(n)
        if u != v and u not in parents[v]:
            parents[v].append(u)  # a repeat or self-loop is skipped: fewer chords, same graph family
    for p in parents:
        p.sort()
    return parents


_EDGES = {
    "tree": _tree_parents,
    "dag": _dag_parents,
    "ring": _ring_parents,
    "strong": _strong_parents,
}
