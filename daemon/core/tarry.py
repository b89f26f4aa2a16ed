"""Tarry's traversal (Tarry 1895; Tel, *Introduction to Distributed Algorithms*, 2nd ed.,
section 6.3, "Tarry's algorithm") as a :class:`~daemon.core.wave.Wave`.

Theory of operation. One token walks the undirected view of the topology; one node, the
initiator, starts it. Each node keeps its father (the neighbour the token first came
from), the channels it has sent the token through, and the token's hop count. Tel's two
rules, and where the code keeps each:

- **R1** — a node never sends the token twice through the same channel
  (``used``: :meth:`TarryWave._forward` only picks a neighbour not in it).
- **R2** — a node other than the initiator sends the token to its father only when R1
  leaves it no other channel (:meth:`TarryWave._forward` tries every other unused
  neighbour first, in the node's neighbour order).
- The initiator is its own father: it starts by sending the token to its first
  neighbour (:meth:`TarryWave.start`); the token comes back to it when every channel
  has been used, and it **decides** there, with ``{"hops": 2|E|}``.

What it guarantees (:meth:`TarryWave.check`, Tel's theorem on Tarry's algorithm): the
token is one message at a time (a traversal); it crosses every link of the undirected
view exactly once in each direction — exactly 2|E| messages, one on each directed
channel of the view — and reaches every node; exactly one decision, at the initiator,
after every other event. The simulator checks the token property beside it
(daemon/sim/wave.py, ``max_in_flight`` = 1).

Topology: the undirected view connected (a topology file always is;
:meth:`TarryWave.refuse` says "not connected" for a :class:`Graph` that is not). One
initiator. A node alone decides at once, with no message (2|E| = 0).

Per-node state: the father, the set of neighbours the token was sent to (at most the
node's degree) and one integer: O(degree).

Duplicates: tolerated. The token carries its hop count (1 on the initiator's first
send, one more on every forward). The token is one, so every real arrival at a node
carries a count above any this node has seen or sent; a node ignores a token whose
count is not, which is every copy the network makes (and a copy reaching a node whose
part is over is dropped by the node: :attr:`TarryWave.finished`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .shapes import links, not_connected
from .wave import Graph, Int, MessageType, Wave, WaveNode, WaveRun
from .waves import WaveError


class TarryToken(NamedTuple):
    wave: str
    hops: int  # token moves so far, this one included


class TarryWave(Wave):
    name = "tarry"
    summary = "Tarry's traversal: one token crosses every link once each way (2|E| messages); the initiator decides"
    messages = (MessageType("tarry.token", TarryToken, {"hops": Int(1, 1 << 40)}),)
    hears_from = "neighbours"
    initiators_allowed = "one"
    dependence = True  # every decision follows an event at every node (daemon/sim/wave.py checks it)

    def __init__(self, node: WaveNode, wave: str, params: dict[str, Any]) -> None:
        super().__init__(node, wave, params)
        self.father: str | None = None  # the initiator's is its own name
        self.used: set[str] = set()  # R1: neighbours the token was sent to
        self.hops = 0  # the highest hop count seen or sent here
        self.done = False

    def start(self) -> None:
        if self.father is not None:
            raise WaveError(f"tarry: node {self.node.me} already has wave {self.wave}")
        self.father = self.node.me
        self._forward(0)

    def receive(self, sender: str, msg: TarryToken) -> None:
        if msg.hops <= self.hops:
            return  # a copy: the one token has moved on since
        self.hops = msg.hops
        if self.father is None:
            self.father = sender
        self._forward(msg.hops)

    def _forward(self, hops: int) -> None:
        node = self.node
        # R1 and R2: an unused channel other than the father's, else the father's
        others = [q for q in node.neighbours if q not in self.used and q != self.father]
        q = others[0] if others else self.father
        if q is None or q == node.me or q in self.used:  # every channel used: the token is back at the initiator
            self.done = True
            node.decide({"hops": hops})
            return
        self.used.add(q)
        self.hops = hops + 1
        node.send(q, TarryToken(self.wave, hops + 1))
        if q == self.father:
            self.done = True  # R2: the father's channel is the last; the token never comes back

    @property
    def finished(self) -> bool:
        return self.done

    # the kind as a whole ---------------------------------------------------------

    @classmethod
    def refuse(cls, graph: Graph) -> str | None:
        return not_connected(graph)

    @classmethod
    def check(cls, graph: Graph, run: WaveRun) -> list[str]:
        found = []
        if len(run.initiators) != 1:
            found.append(f"{len(run.initiators)} initiators; Tarry's traversal has exactly one")
            return found
        root = run.initiators[0]
        view = links(graph)
        channels = {(a, b) for a, b in view} | {(b, a) for a, b in view}
        for (a, b), count in sorted(run.per_channel.items()):
            if (a, b) not in channels:
                found.append(f"{count} messages from {a} to {b}, which are not neighbours")
            elif count > 1:
                found.append(f"the token crossed {a} -> {b} {count} times; R1 allows once")
        deciders = [p for p, _ in run.decisions]
        if any(p != root for p in deciders):
            found.append(f"decided at {', '.join(p for p in deciders if p != root)}, not at the initiator {root}")
        if len(deciders) > 1:
            found.append(f"{len(deciders)} decisions; exactly one, at the initiator")
        if not run.complete:
            return found
        missing = sorted(c for c in channels if run.per_channel.get(c, 0) == 0)
        if missing:
            a, b = missing[0]
            found.append(f"the token never crossed {a} -> {b} ({len(missing)} directed channels unused)")
        if run.messages != 2 * len(view):
            found.append(f"{run.messages} messages, expected exactly 2|E| = {2 * len(view)}")
        if root not in deciders:
            found.append(f"the initiator {root} did not decide")
        elif dict(run.decisions)[root] != {"hops": 2 * len(view)}:
            result = dict(run.decisions)[root]
            found.append(f"the initiator decided with {result!r}, expected hops 2|E| = {2 * len(view)}")
        unreached = [n for n in graph.nodes if n not in run.reached]
        if unreached:
            found.append(
                f"the token never reached {', '.join(unreached[:5])}"
                + (f" ({len(unreached)} nodes)" if len(unreached) > 5 else "")
            )
        return found
