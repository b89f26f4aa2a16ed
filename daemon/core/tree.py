"""The tree algorithm (Tel, *Introduction to Distributed Algorithms*, 2nd ed., 6.2.2,
alg. 6.3) as a :class:`~daemon.core.wave.Wave`.

Theory of operation. The topology's undirected view is a tree; every leaf initiates
(:meth:`TreeWave.initiators` returns the leaves). Each node counts the neighbours it has
heard from; the rules of alg. 6.3, and where the code keeps each:

- **Wait** — a node receives from its neighbours while more than one has not been
  heard from (``heard``, a set: :meth:`TreeWave.receive`).
- **Send** — once exactly one neighbour q0 is left unheard, the node sends its one
  message to q0 (:meth:`TreeWave._step`). A leaf has one neighbour, so it sends at once:
  at its start, or — a leaf the operator did not start — first thing on the message
  that wakes it, as alg. 6.3's leaf would before its ``receive``.
- **Decide** — when the node has heard from q0 too, it decides, with
  ``{"with": q0}`` (:meth:`TreeWave._step`).

What it guarantees (:meth:`TreeWave.check`; Tel's lemma on alg. 6.3): every node sends
exactly one message, so N messages in all, each over a link of the tree; exactly two
nodes decide, and they are neighbours that sent their messages to each other (each
decision names the other). A node alone decides at once, with no message: one decision,
N − 1 = 0 messages — the one case where "N messages, two deciders" does not hold.
These are liveness claims only when every leaf initiated; otherwise the check claims
safety alone (no node sends twice, no message off the tree, at most two deciders).

Topology: the undirected view a tree (N − 1 links, connected; a pair of opposite edges
is one link). :meth:`TreeWave.refuse` says "not a tree" and names the link that closes a
cycle (or a node no path reaches). Many initiators: every leaf, and an inner node may be
started too (it only waits, as alg. 6.3's inner nodes do).

Per-node state: the set of neighbours heard from (at most the degree), the one it sent
to, a flag: O(degree).

Duplicates: tolerated. A node counts distinct senders, not messages, so a copy of a
message from a neighbour it has heard from changes nothing; a copy reaching a node
after it decided is dropped by the node (:attr:`TreeWave.finished`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .shapes import links, not_a_tree
from .wave import Graph, MessageType, Wave, WaveNode, WaveRun


class TreeMsg(NamedTuple):
    wave: str


class TreeWave(Wave):
    name = "tree"
    summary = "the tree algorithm: on a tree every leaf initiates, N messages, two neighbours decide"
    messages = (MessageType("tree.msg", TreeMsg, {}),)
    hears_from = "neighbours"
    initiators_allowed = "many"
    dependence = True  # every decision follows an event at every node (daemon/sim/wave.py checks it)

    def __init__(self, node: WaveNode, wave: str, params: dict[str, Any]) -> None:
        super().__init__(node, wave, params)
        self.heard: set[str] = set()
        self.sent_to: str | None = None
        self.decided = False

    def start(self) -> None:
        self._step()

    def receive(self, sender: str, msg: TreeMsg) -> None:
        self._step()  # a leaf woken by this message sends first, as alg. 6.3's would
        if sender in self.heard:
            return  # a copy
        self.heard.add(sender)
        self._step()

    def _step(self) -> None:
        node = self.node
        missing = [q for q in node.neighbours if q not in self.heard]
        if self.sent_to is None and len(missing) == 1:
            self.sent_to = missing[0]
            node.send(missing[0], TreeMsg(self.wave))
        if not missing and not self.decided:
            self.decided = True
            node.decide({"with": self.sent_to})

    @property
    def finished(self) -> bool:
        return self.decided

    # the kind as a whole ---------------------------------------------------------

    @classmethod
    def refuse(cls, graph: Graph) -> str | None:
        return not_a_tree(graph)

    @classmethod
    def leaves(cls, graph: Graph) -> tuple[str, ...]:
        """The nodes of degree 1 in the undirected view (or the node alone)."""
        if len(graph.nodes) == 1:
            return graph.nodes
        return tuple(n for n in graph.nodes if len(graph.neighbours(n)) == 1)

    @classmethod
    def initiators(cls, graph: Graph, chosen: tuple[str, ...] = ()) -> tuple[str, ...]:
        return chosen or cls.leaves(graph)

    @classmethod
    def deciders(cls, graph: Graph, initiators: tuple[str, ...]) -> int:
        return 1 if len(graph.nodes) == 1 else 2

    @classmethod
    def check(cls, graph: Graph, run: WaveRun) -> list[str]:
        found = []
        tree = {frozenset(link) for link in links(graph)}
        sent: dict[str, int] = {}
        for (a, b), count in sorted(run.per_channel.items()):
            if frozenset((a, b)) not in tree:
                found.append(f"{count} messages from {a} to {b}, which are not linked in the tree")
            sent[a] = sent.get(a, 0) + count
        for p, count in sent.items():
            if count > 1:
                found.append(f"node {p} sent {count} messages; each node sends exactly one")
        deciders = [p for p, _ in run.decisions]
        if len(deciders) > 2:
            found.append(f"{len(deciders)} decisions ({', '.join(deciders)}); exactly two neighbours decide")
        if len(deciders) == 2:
            a, b = deciders
            if frozenset((a, b)) not in tree:
                found.append(f"the deciders {a} and {b} are not neighbours")
            results = dict(run.decisions)
            if results[a] != {"with": b} or results[b] != {"with": a}:
                found.append(
                    f"the deciders {a} and {b} did not send to each other: "
                    f"{a} decided {results[a]!r}, {b} decided {results[b]!r}"
                )
        leaves = cls.leaves(graph)
        every_leaf = set(leaves) <= set(run.initiators)
        if not (run.complete and every_leaf):
            return found
        n = len(graph.nodes)
        expected = 0 if n == 1 else n
        if run.messages != expected:
            found.append(
                f"{run.messages} messages, expected N = {expected}"
                if n > 1
                else f"{run.messages} messages, expected none on a node alone"
            )
        silent = [p for p in graph.nodes if n > 1 and sent.get(p, 0) == 0]
        if silent:
            found.append(f"{len(silent)} nodes never sent: {', '.join(silent[:5])}")
        if len(deciders) != cls.deciders(graph, run.initiators):
            found.append(f"{len(deciders)} decisions, expected {cls.deciders(graph, run.initiators)}")
        return found
