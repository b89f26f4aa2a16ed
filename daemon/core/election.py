"""Chang–Roberts election on a directed ring (Chang and Roberts 1979; Tel, *Introduction
to Distributed Algorithms*, 2nd ed., 7.2.1, alg. 7.3) as a :class:`~daemon.core.wave.Wave`.

Theory of operation. The topology is one directed cycle; each node's id is its **name**,
compared as strings (names are ASCII, daemon/topology.py, so this is byte order): the
largest name wins. Every node is a candidate; the rules of alg. 7.3, and where the code
keeps each:

- **Announce** — a node sends its own id to its successor (its one child), once: at its
  start (:meth:`ElectionWave.start`), or, if a token reaches it before the operator's
  start does, first thing on that token (:meth:`ElectionWave._wake`), so that every node
  takes part whatever the order of events.
- **Forward or purge** — a node receiving an id q forwards it to its successor if
  q > its own id, and drops it if q < its own id (:meth:`ElectionWave.receive`).
- **Win** — a node receiving its own id has seen it go round the whole ring: no id on
  the ring is larger; it is the leader and decides, with ``{"leader": its name}``.
  No announcement follows: only the leader decides, and every message counted below is
  a message of the election itself.

What it guarantees (:meth:`ElectionWave.check`): exactly one decision, at the node with
the largest name. Messages: each id travels from its node to the next node round the
ring with a larger id (the largest all the way round, N hops), so the count is a
function of the arrangement alone, never of the delays — the check computes it exactly.
It lies between 2N − 1 (ids rising along the ring: every id but the largest dies at the
first hop) and N(N + 1)/2 (ids falling along the ring: the id of rank i travels i hops),
both reached (tests/sim/test_election.py). A node alone elects itself at its start with
no message (the formulas' 1 counts a message to itself it has no channel for).

Topology: a directed ring (each node exactly one parent and one child, one cycle through
all): :meth:`ElectionWave.refuse` says "not a ring" and names the node with the wrong
number of parents or children, or one off the cycle. Every node initiates
(:meth:`ElectionWave.initiators`); any non-empty subset may, the rest waking on the first
token.

Per-node state: its own flags and the set of ids larger than its own that it has
forwarded — at most the number of nodes before it on the ring whose id beats every id
between them and it (N − 1 on a falling ring): O(N) names.

Duplicates: tolerated. A node forwards each id at most once (the set above; an id
smaller than its own is dropped whether it is a copy or not), and decides at most once,
so a copy changes neither the messages sent nor the decisions.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .shapes import not_a_ring
from .wave import Graph, MessageType, Text, Wave, WaveNode, WaveRun


class ElectionToken(NamedTuple):
    wave: str
    id: str  # a candidate's name


class ElectionWave(Wave):
    name = "election"
    summary = "Chang–Roberts election on a directed ring: the largest name leads; 2N−1 to N(N+1)/2 messages"
    messages = (MessageType("election.token", ElectionToken, {"id": Text(64)}),)
    hears_from = "parents"
    initiators_allowed = "many"
    dependence = True  # every decision follows an event at every node (daemon/sim/wave.py checks it)

    def __init__(self, node: WaveNode, wave: str, params: dict[str, Any]) -> None:
        super().__init__(node, wave, params)
        self.awake = False
        self.forwarded: set[str] = set()
        self.leader = False

    def start(self) -> None:
        self._wake()

    def _wake(self) -> None:
        if self.awake:
            return
        self.awake = True
        node = self.node
        if not node.children:  # a node alone
            self.leader = True
            node.decide({"leader": node.me})
            return
        node.send(node.children[0], ElectionToken(self.wave, node.me))

    def receive(self, sender: str, msg: ElectionToken) -> None:
        self._wake()
        node = self.node
        q = msg.id
        if q == node.me:
            if not self.leader:
                self.leader = True
                node.decide({"leader": node.me})
        elif q > node.me and q not in self.forwarded:
            self.forwarded.add(q)
            node.send(node.children[0], ElectionToken(self.wave, q))

    @property
    def finished(self) -> bool:
        return self.leader

    # the kind as a whole ---------------------------------------------------------

    @classmethod
    def refuse(cls, graph: Graph) -> str | None:
        return not_a_ring(graph)

    @classmethod
    def initiators(cls, graph: Graph, chosen: tuple[str, ...] = ()) -> tuple[str, ...]:
        return chosen or graph.nodes

    @classmethod
    def expected_messages(cls, graph: Graph) -> int:
        """The exact number of messages on this ring: each id's hops to the next larger
        id (N for the largest). O(N²) in the worst case; 0 for a node alone."""
        nodes = graph.nodes
        if len(nodes) == 1:
            return 0
        nxt = dict(graph.edges)
        total = 0
        for p in nodes:
            hops, q = 1, nxt[p]
            while q < p:
                hops += 1
                q = nxt[q]
            total += hops
        return total

    @classmethod
    def check(cls, graph: Graph, run: WaveRun) -> list[str]:
        found = []
        top = max(graph.nodes)
        ring = set(graph.edges)
        for (a, b), count in sorted(run.per_channel.items()):
            if (a, b) not in ring:
                found.append(f"{count} messages from {a} to {b}, which is not a ring edge")
        wrong = [(p, r) for p, r in run.decisions if p != top or r != {"leader": top}]
        for p, r in wrong:
            found.append(f"{p} decided {r!r}; only {top}, the largest name, may decide, as leader")
        if len(run.decisions) > 1:
            found.append(f"{len(run.decisions)} decisions; exactly one leader")
        n = len(graph.nodes)
        if n > 1 and not run.complete and run.messages > n * (n + 1) // 2:
            found.append(f"{run.messages} messages, above the worst case N(N+1)/2 = {n * (n + 1) // 2}")
        if not run.complete:
            return found
        if top not in [p for p, _ in run.decisions]:
            found.append(f"no leader: {top} did not decide")
        expected = cls.expected_messages(graph)
        if run.messages != expected:
            found.append(
                f"{run.messages} messages, expected exactly {expected} on this arrangement "
                f"(2N−1 = {2 * n - 1} .. N(N+1)/2 = {n * (n + 1) // 2})"
            )
        return found
