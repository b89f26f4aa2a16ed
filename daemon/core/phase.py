"""The phase algorithm (Tel, *Introduction to Distributed Algorithms*, 2nd ed., 6.2.5,
alg. 6.7) as a :class:`~daemon.core.wave.Wave`.

Theory of operation. The topology is directed and strongly connected; the operator gives
``D``, a bound on its diameter (N − 1 always is one). Each node sends D tokens on each
of its out-channels, in rounds; the rules of alg. 6.7, and where the code keeps each:

- **Count** — a node counts the tokens it has received from each in-neighbour
  (``got``: :meth:`PhaseWave.receive`) and the rounds it has sent (``sent``).
- **Initiate** — an initiator sends its first round at once (:meth:`PhaseWave.start`);
  any node may initiate, and a node the operator did not start sends its first round on
  the first token it receives (alg. 6.7's ``Rec ≥ Sent`` with both 0).
- **Send** — a node sends round k + 1 to every out-neighbour once it has received at
  least k tokens from every in-neighbour and has sent k < D rounds
  (:meth:`PhaseWave._advance`: ``min Rec ≥ Sent ∧ Sent < D``).
- **Decide** — once it has received D tokens from every in-neighbour (and so has sent
  its D rounds), the node decides, with ``{"D": D}``.

What it guarantees (:meth:`PhaseWave.check`; Tel's theorem on alg. 6.7): exactly D
messages on every directed channel (edge), none anywhere else, D·|E| in all; **every**
node decides, once. With D at least the diameter, each decision is causally preceded by
an event at every node (the wave property); the check says so when the run's D is below
the diameter (computed for graphs of up to 2,000 nodes, daemon/core/shapes.py). A node
alone decides at its start with no message.

Topology: directed and strongly connected: :meth:`PhaseWave.refuse` says "not strongly
connected" and names a node the first node has no path to, or one with no path to it.
Start parameter ``D`` (an integer ≥ 1, required; ``--param D=N`` in ``ctl``). Many
initiators (the default is the first node).

Per-node state: for each in-neighbour a set of the token numbers received from it (a D-bit
integer) and its count, plus the rounds sent: O(in-degree · D) bits.

Duplicates: tolerated. Each token carries its round number (1..D), and a node keeps, per
in-neighbour, which rounds it has received: a copy of a round already received from
that neighbour is ignored, so copies never count twice (channels need not be FIFO:
round numbers arrive in any order). A copy reaching a node after it decided is dropped
by the node (:attr:`PhaseWave.finished`).
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from .shapes import diameter, not_strongly_connected
from .wave import Bound, Graph, Int, MessageType, Wave, WaveNode, WaveRun
from .waves import WaveError

MAX_D = 1 << 20


class PhaseToken(NamedTuple):
    wave: str
    round: int  # 1..D: which of the sender's rounds this token is


class PhaseWave(Wave):
    name = "phase"
    summary = (
        "the phase algorithm: strongly connected digraph, diameter bound D; D messages per edge, every node decides"
    )
    messages = (MessageType("phase.token", PhaseToken, {"round": Int(1, MAX_D)}),)
    params: ClassVar[dict[str, Bound]] = {"D": Int(1, MAX_D)}
    hears_from = "parents"
    initiators_allowed = "many"
    dependence = True  # with D >= the diameter, every decision follows an event at every node

    def __init__(self, node: WaveNode, wave: str, params: dict[str, Any]) -> None:
        super().__init__(node, wave, params)
        self.D: int = params["D"]
        self.got: dict[str, int] = {q: 0 for q in node.parents}  # rounds received, as bits
        self.count: dict[str, int] = {q: 0 for q in node.parents}  # Rec_p[q]
        self.sent = 0  # Sent_p
        self.decided = False

    def start(self) -> None:
        self._advance()

    def receive(self, sender: str, msg: PhaseToken) -> None:
        if msg.round > self.D:
            raise WaveError(
                f"phase: node {self.node.me} got round {msg.round} from {sender} "
                f"in wave {self.wave}, whose D is {self.D}"
            )
        bit = 1 << msg.round
        if self.got[sender] & bit:
            return  # a copy of a round already counted
        self.got[sender] |= bit
        self.count[sender] += 1
        self._advance()

    def _low(self) -> int:
        """min over the in-neighbours of Rec_p[q] (D when there are none)."""
        return min(self.count.values(), default=self.D)

    def _advance(self) -> None:
        node = self.node
        while self.sent < self.D and self._low() >= self.sent:
            self.sent += 1
            for r in node.children:
                node.send(r, PhaseToken(self.wave, self.sent))
        if not self.decided and self._low() >= self.D:
            self.decided = True
            node.decide({"D": self.D})

    @property
    def finished(self) -> bool:
        return self.decided

    # the kind as a whole ---------------------------------------------------------

    @classmethod
    def refuse(cls, graph: Graph) -> str | None:
        return not_strongly_connected(graph)

    @classmethod
    def deciders(cls, graph: Graph, initiators: tuple[str, ...]) -> int:
        return len(graph.nodes)

    @classmethod
    def check(cls, graph: Graph, run: WaveRun) -> list[str]:
        found = []
        ds = sorted({r["D"] for _, r in run.decisions if isinstance(r, dict) and isinstance(r.get("D"), int)})
        if len(ds) > 1:
            found.append(f"the nodes decided with different D: {ds}")
        d = ds[0] if len(ds) == 1 else None
        edges = set(graph.edges)
        for (a, b), count in sorted(run.per_channel.items()):
            if (a, b) not in edges:
                found.append(f"{count} messages from {a} to {b}, which is not an edge")
            elif d is not None and count > d:
                found.append(f"{count} messages on {a} -> {b}, more than D = {d}")
        deciders = [p for p, _ in run.decisions]
        twice = sorted({p for p in deciders if deciders.count(p) > 1})
        if twice:
            found.append(f"decided more than once: {', '.join(twice)}")
        if d is not None:
            diam = diameter(graph)
            if diam is not None and d < diam:
                found.append(f"D = {d} is below the diameter {diam}: a decision need not follow an event at every node")
        if not run.complete:
            return found
        undecided = [p for p in graph.nodes if p not in set(deciders)]
        if undecided:
            found.append(f"{len(undecided)} nodes did not decide: {', '.join(undecided[:5])}")
        if d is None:
            return found
        short = [(a, b) for a, b in graph.edges if run.per_channel.get((a, b), 0) != d]
        if short:
            a, b = short[0]
            found.append(
                f"{run.per_channel.get((a, b), 0)} messages on {a} -> {b}, expected exactly D = {d} "
                f"({len(short)} edges off)"
            )
        if run.messages != d * len(edges):
            found.append(f"{run.messages} messages, expected D·|E| = {d}·{len(edges)} = {d * len(edges)}")
        return found
