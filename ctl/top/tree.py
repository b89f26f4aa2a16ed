"""The tree ``ctl top`` draws: an echo wave's spanning tree, in screen order.

An echo wave (Tel 6.2.3) runs on the undirected view of the topology; each node's
*father* is the neighbour its first EXPLORE came from, and the father pointers form a
spanning tree rooted at the initiator. That tree is what is drawn, so its shape may
change from wave to wave; siblings are sorted in topology-file order so that the picture
moves only when the tree really does.

What the tree leaves out is kept on each row: the node's topology parents other than its
father (DAG and cycle edges), and whether the father is a topology *child* (the wave
came up against the edge's direction). A node of the topology that is in no wave (silent
since before the first one) hangs under its first topology parent, marked as not
reached, since no wave drew that edge. Iteration never runs over a set: order comes
from the topology file and the snapshot's lists.

The spanning tree may change from wave to wave on a DAG or a graph with cycles (a node's
father is whichever neighbour's EXPLORE came first), so its rows may move. The view's
other orders (``ViewState.sort``) are flat lists that keep still: the topology's order,
by name, or by load or queue (the largest first, ties in the topology's order; a node
that does not answer last). Each flat row still knows its father and topology parents.

The name filter (``ViewState.filter``, a substring) keeps the nodes whose name holds it;
in the tree, also their ancestors, so that each match still hangs where it does.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctl.top.view import ViewState


@dataclass(slots=True)  # read-only by convention; slots: 200 of these per frame
class Row:
    """One line of the tree: a node, where it hangs, and how it got there."""

    name: str
    depth: int
    guides: tuple[bool, ...]  # per ancestor level below the root: does a line continue?
    last: bool  # the last child of its parent
    node: dict | None  # its entry in the snapshot; None if it never answered
    father: str | None  # the node it hangs under
    reached: bool  # hung by the wave's father pointer (False: under a topology parent)
    hidden: int  # descendants hidden because this subtree is collapsed
    parents: tuple[str, ...]  # its topology parents

    @property
    def extra_parents(self) -> tuple[str, ...]:
        """Topology parents other than the father: the DAG and cycle edges not drawn."""
        return tuple(p for p in self.parents if p != self.father)

    @property
    def against_edge(self) -> bool:
        """The wave reached this node from a topology child (echo ignores direction)."""
        return self.reached and self.father is not None and self.father not in self.parents


def tree_rows(snapshot: dict | None, view: ViewState) -> list[Row]:
    """The rows on screen, in order: the tree (collapsed subtrees left out) or a flat
    list sorted as ``view.sort`` says; filtered by ``view.filter``."""
    if view.sort == "tree":
        rows = _tree(snapshot, view, fold=True)
        return _filtered_tree(rows, view.filter) if view.filter else rows
    return _flat(_tree(snapshot, view, fold=False), view)


def _flat(tree: list[Row], view: ViewState) -> list[Row]:
    """Every node of the tree as a flat list in ``view.sort``'s order."""
    order = {r.name: i for i, r in enumerate(view.roster)}

    def place(row: Row) -> int:
        return order.get(row.name, len(order))

    keys = {
        "topology": lambda r: (place(r), r.name),
        "name": lambda r: (r.name, place(r)),
        "load": lambda r: (r.node is None, -(r.node or {}).get("load", 0.0), place(r), r.name),
        "queue": lambda r: (r.node is None, -(r.node or {}).get("queued", 0), place(r), r.name),
    }
    rows = sorted(tree, key=keys[view.sort])
    return [
        Row(
            name=r.name,
            depth=0,
            guides=(),
            last=True,
            node=r.node,
            father=r.father,
            reached=r.reached,
            hidden=0,
            parents=r.parents,
        )
        for r in rows
        if view.filter in r.name
    ]


def _filtered_tree(rows: list[Row], text: str) -> list[Row]:
    """The tree's rows whose name holds ``text``, with their ancestors; the lines that
    join them drawn again for the pruned tree."""
    keep: set[str] = set()
    fathers = {r.name: r.father for r in rows}
    for r in rows:
        if text in r.name:
            name: str | None = r.name
            while name is not None and name not in keep:
                keep.add(name)
                name = fathers.get(name)
    kept = [r for r in rows if r.name in keep]
    out: list[Row] = []
    last_at: dict[int, bool] = {}  # the lastness of the latest row at each depth: r's ancestors'
    for i, r in enumerate(kept):
        last = True
        for later in kept[i + 1 :]:
            if later.depth < r.depth:
                break
            if later.depth == r.depth:
                last = False  # a sibling follows before the tree climbs above r
                break
        last_at[r.depth] = last
        out.append(
            Row(
                name=r.name,
                depth=r.depth,
                guides=tuple(not last_at[d] for d in range(1, r.depth)),
                last=last,
                node=r.node,
                father=r.father,
                reached=r.reached,
                hidden=r.hidden,
                parents=r.parents,
            )
        )
    return out


def _tree(snapshot: dict | None, view: ViewState, fold: bool = True) -> list[Row]:
    """The rows of the tree, in screen order, collapsed subtrees left out (with ``fold``)."""
    nodes = snapshot["nodes"] if snapshot else []
    by_name = {n["name"]: n for n in nodes}
    order = {r.name: i for i, r in enumerate(view.roster)}
    topo_parents = {r.name: r.parents for r in view.roster}
    for n in nodes:
        topo_parents.setdefault(n["name"], tuple(n.get("parents") or ()))

    children: dict[str, list[str]] = {}
    father: dict[str, str | None] = {}
    roots: list[str] = []
    for n in nodes:
        f = n.get("father")
        father[n["name"]] = f
        if f is None or f not in by_name or f == n["name"]:
            roots.append(n["name"])
        else:
            children.setdefault(f, []).append(n["name"])

    # Nodes of the topology that no wave reached hang under their first placed parent,
    # in file order, pass after pass (a chain of silent nodes). A node whose parents are
    # all outside the roster, or none, is a root; so is the first of a cycle of silent
    # nodes when a pass places nothing.
    unreached: set[str] = set()
    in_roster = set(order)
    pending = [r for r in view.roster if r.name not in by_name]
    placed = set(by_name)
    while pending:
        still = []
        for r in pending:
            up = next((p for p in r.parents if p in placed), None)
            if up is None and any(p in in_roster and p not in placed for p in r.parents):
                still.append(r)  # a parent may be placed in a later pass
                continue
            if up is None:
                roots.append(r.name)
            else:
                children.setdefault(up, []).append(r.name)
            father[r.name] = up
            placed.add(r.name)
            unreached.add(r.name)
        if len(still) == len(pending):
            first = still.pop(0)
            roots.append(first.name)
            father[first.name] = None
            placed.add(first.name)
            unreached.add(first.name)
        pending = still

    def rank(name: str):
        return (order.get(name, len(order)), name)

    for kids in children.values():
        kids.sort(key=rank)
    roots.sort(key=rank)

    rows: list[Row] = []
    visited: set[str] = set()

    def walk(root: str) -> None:
        stack: list[tuple[str, int, tuple[bool, ...], bool]] = [(root, 0, (), True)]
        while stack:
            name, depth, guides, last = stack.pop()
            if name in visited:  # father pointers that loop: draw each node once
                continue
            visited.add(name)
            folded = fold and name in view.collapsed and bool(children.get(name))
            below_fold = _descendants(name, children) if folded else set()
            visited.update(below_fold)  # hidden, not lost: keep them out of the loop check
            rows.append(
                Row(
                    name=name,
                    depth=depth,
                    guides=guides,
                    last=last,
                    node=by_name.get(name),
                    father=father.get(name),
                    reached=name not in unreached,
                    hidden=len(below_fold),
                    parents=topo_parents.get(name, ()),
                )
            )
            if folded:
                continue
            kids = children.get(name, [])
            below = (*guides, not last) if depth > 0 else guides
            for i in range(len(kids) - 1, -1, -1):
                stack.append((kids[i], depth + 1, below, i == len(kids) - 1))

    for root in roots:
        walk(root)
    # Anything left sits on a loop of father pointers (a malformed snapshot): show it.
    for name in sorted(set(father) - visited, key=rank):
        if name not in visited:
            walk(name)
    return rows


def _descendants(root: str, children: dict[str, list[str]]) -> set[str]:
    """The nodes that hang below ``root`` (each once, even on a loop); membership only."""
    seen = {root}
    stack = list(children.get(root, ()))
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(children.get(name, ()))
    seen.discard(root)
    return seen
