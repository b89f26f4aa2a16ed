"""Termination detection of the cluster's own work: the kind ``termination`` (``ctl wait``).

What it guarantees. The initiator decides ``{"terminated": True, ...}`` only when, at
that moment, no task is queued or running at any node and no move is in flight — except
work that entered from outside (an operator's submit, a Finn decision, a topology's
initial tasks) during the final round at a node the round's token had already left.
Such an entry is concurrent with the decision: no algorithm can know of it (the
decision cannot depend on an event it has no causal path from), and `ctl wait` says so
(README). Work that entered before the final round began, and everything it caused, is
always finished. Liveness: once the cluster is idle and nothing enters, the detection
comes within two rounds (2(N-1) token hops each), provided no token hop is lost. A lost
hop (a dead or restarted node, a stalled one) ends the wave with
``{"terminated": False, "reason": "lost", "node": X}``, decided by the node that handed
the token to X; the deadline of the wave ends it with ``"reason": "timeout"``. Neither is
ever a detection. The simulator (daemon/sim/termination.py) checks all of it against the
global truth it keeps, over many seeds, with faults; tests/sim/test_termination.py.

Topologies: any whose undirected view is connected (:meth:`Termination.refuse`). State
per node: at most one held token (a bitmap of N bits and a path of at most N indices)
and a few numbers: O(N) bytes.

The choice: a token algorithm of the Dijkstra–Feijen–van Gasteren / Safra family (Tel,
*Introduction to Distributed Algorithms*, 2nd ed., section 8.3), not Dijkstra–Scholten
(section 8.2). Work enters anywhere — a submit or a Finn decision enqueues at any node,
with no message from a root — so there is no single diffusing computation whose tree
could collapse to an initiator; Dijkstra–Scholten would need every entry to join a tree
it did not start, and a restarted node would break the tree's signalling. A token needs
nothing of the work.

Why colours and no message counters (Safra's ``mc``). A basic message here is a move of
daemon/core/tasks.py ("Moving a task exactly once" in ARCHITECTURE.md), and a node is
*idle* (:class:`~daemon.core.wave.Work`) only when no task is queued or running there
*and no move of its own is unanswered*: the donor stays busy from the move's ``Leave``
until its ACK or its take-back. So every acceptance of tasks happens while its donor is
busy: communication is, for termination, synchronous — Dijkstra, Feijen and van
Gasteren's setting (Tel 8.3.1), in which colours suffice. Safra's counters are for
asynchronous messages, and they would be wrong here twice over: the hand-off's one
duplicate case (the destination accepted, every ACK was lost, the donor took the tasks
back: one message received twice) leaves the sum of the counters at -1, which a
later +1 can cancel into a false detection; and a restarted node's counters are not in
its journal. Colours need neither.

The rule. A node is *black* when it has been busy at any moment since the token last
left it (and when its instance is new: it cannot vouch for the time before it existed,
so the first round of a wave never succeeds). The token, white when a round starts,
turns black at any node that is black when the token passes; passing whitens the node
(black again at once if it is busy). A node holds the token at its first visit in a
round until it is idle. The initiator starts a round only when idle, is whitened then,
and announces termination when the token comes back white, it is white itself (idle
throughout the round), and it is idle.

Proof (safety). Let round r start at t_s and end at the initiator at t_d with the
announcement; v_p is the first visit of node p (v = t_d for the initiator). Every node
was idle at v_p and white, so idle throughout [t_s, v_p]. Suppose some node is busy at
t_d although nothing entered from outside. A node turns busy only by accepting a move
(or by an entry from outside), so there is an earliest acceptance e at a node p with
e > v_p, of a move m from donor D, which left D at l < e and is unanswered at D until
after e (its ACK follows the acceptance; its take-back comes at expiry plus grace, after
the last moment the destination accepts — the hand-off's clock assumption). So D is
busy at e. If v_D > e, D was busy within [t_s, v_D]: black, and the token would be
black. If v_D < e, D was idle at v_D and busy at e, so it turned busy in between by an
acceptance earlier than e: contradiction. Hence no node is busy at t_d, and no move is
in flight (its donor would be busy). An entry from outside at a node before its visit
makes it busy (the token waits); at a node on the token's path back it blackens the
token when the token passes again; only one after the token's last pass there is left,
and it is the concurrent case of the guarantee.

How the token travels. Each node knows only its neighbours (parents and children: the
undirected view) and every node's name, and sends only to neighbours
(daemon/core/wave.py ``WaveNode.send``; the driver could reach any node, the wave
interface allows neighbours). The token does a depth-first search with neighbour
knowledge (Tel section 6.4): it carries the set of visited nodes (a bitmap over the
sorted names, which every node knows) and the path from the initiator to its holder
(indices into the same order); a node sends it to its first unvisited neighbour, or back
to the node before it on the path when none is left. A round is exactly 2(N-1) token
hops and needs no knowledge a node lacks. A node keeps nothing between two passes but
its colour, so an instance the node forgets (daemon/core/node.py forgets a quiet wave)
or loses in a crash is only a new, black one: one more round.

Lost tokens. Each hop is acknowledged: the receiver answers ``term.ack`` at once
(holding) and again when the node it passed the token to has answered (passed). The
sender resends the token every :data:`PROBE` seconds until then (a dropped message; a
duplicate is recognised by (round, hop) and answered again; a resend is black if the
sender has been busy since the first copy, for if that copy was lost the resend is the
pass), and if its receiver is
silent for ``lost`` seconds it decides ``{"terminated": False, "reason": "lost", "node":
receiver}`` — the operator then names that node if it does not answer a ping, or starts
a new wave (daemon/core/node.py refuses a wave older than a restarted node, so a node
that restarted cannot join the old one; the new one's first round whitens everyone).
The initiator holding the token is watched by the operator's deadline. A restarted node
needs nothing from its journal: its colour is gone with its instance, and a new
instance is black.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar, NamedTuple

from daemon.core.wave import Blob, Bound, Flag, Graph, Int, Items, MessageType, Num, Wave, WaveNode, WaveRun
from daemon.core.waves import WaveError

PROBE = 0.5  # seconds between resends of a token hop not yet answered passed
LOST = 5.0  # seconds a receiver may stay silent before its hop counts as lost (param "lost")
MAX_NODES = 1 << 20  # the bitmap's bound: one bit per node


class Token(NamedTuple):
    wave: str
    round: int
    hop: int  # hops of this round so far: (round, hop) names one hop of the token's life
    visited: bytes  # bit i: the i-th node of sorted(nodes) has been visited this round
    path: list[int]  # the depth-first path from the initiator to the holder, as indices into sorted(nodes)
    black: bool


class TokenAck(NamedTuple):
    wave: str
    round: int
    hop: int
    passed: bool  # the receiver has handed the token on (and its next hop was answered)


@lru_cache(maxsize=16)
def _order(nodes: frozenset[str]) -> tuple[dict[str, int], tuple[str, ...]]:
    names = tuple(sorted(nodes))
    return {name: i for i, name in enumerate(names)}, names


class _Watch:
    """A token hop this node sent and still answers for."""

    __slots__ = ("dest", "msg", "heard", "sent", "answered")

    def __init__(self, dest: str, msg: Token, now: float):
        self.dest = dest
        self.msg = msg
        self.heard = now
        self.sent = now
        self.answered = False


class Termination(Wave):
    name = "termination"
    tag = "term"
    summary = "detects that every task has run and no move is in flight (a DFG/Safra token on a DFS tour)"
    messages = (
        MessageType(
            "term.token",
            Token,
            {
                "round": Int(1),
                "hop": Int(0),
                "visited": Blob(MAX_NODES // 8 + 1),
                "path": Items(MAX_NODES),
                "black": Flag(),
            },
        ),
        MessageType("term.ack", TokenAck, {"round": Int(1), "hop": Int(0), "passed": Flag()}),
    )
    params: ClassVar[dict[str, Bound]] = {"lost": Num(0.0, 3600.0)}
    defaults: ClassVar[dict[str, Any]] = {"lost": LOST}
    hears_from = "neighbours"
    watches_work = True

    def __init__(self, node: WaveNode, wave: str, params: dict[str, Any]):
        super().__init__(node, wave, params)
        self.lost_after = float(params.get("lost", LOST))
        self._index, self._names = _order(node.nodes)
        self.black = True  # a new instance cannot vouch for the time before it existed
        self._counts: tuple[int, int] | None = None  # (sent, received) last seen
        self.initiator = False
        self.round = 0  # the latest round this node has seen
        self._last: tuple[int, int] = (0, -1)  # the latest (round, hop) received
        self._held: Token | None = None  # a token waiting here for the node to be idle
        self._upstream: tuple[str, int, int] | None = None  # (sender, round, hop) not yet told "passed"
        self._watch: _Watch | None = None
        self._ends: float | None = None  # the initiator's deadline
        self._waiting = False  # the initiator waits to be idle before the next round
        self._done = False
        self.rounds_failed = 0
        self.hops = 0

    # --- events ---------------------------------------------------------------------

    def start(self) -> None:
        self.initiator = True
        left = self.node.budget()
        if left is not None:
            self._ends = self.node.now + left
        self._look()
        self._waiting = True
        self._begin_round()
        self._arm()

    def receive(self, sender: str, msg: Any) -> None:
        if self._done:  # over here: a resend of a hop this node took is answered "passed"
            if type(msg) is Token:
                self.node.send(sender, TokenAck(self.wave, msg.round, msg.hop, True))
            return
        if type(msg) is TokenAck:
            self._on_ack(sender, msg)
        elif type(msg) is Token:
            self._on_token(sender, msg)
        else:
            raise WaveError(f"{self.node.me}: {type(msg).__name__} is not a message of wave {self.wave}")
        self._arm()

    def work(self) -> None:
        if self._done:
            return
        self._look()
        if self._held is not None:
            self._pass_on()
        elif self._waiting:
            self._begin_round()
        self._arm()

    def expire(self) -> None:
        if self._done:
            return
        now = self.node.now
        w = self._watch
        if w is not None and now >= w.heard + self.lost_after:
            self._decide(
                {"terminated": False, "reason": "lost", "node": w.dest, "round": self.round, "by": self.node.me}
            )
            return
        if self._ends is not None and now >= self._ends:
            self._decide(
                {
                    "terminated": False,
                    "reason": "timeout",
                    "rounds": self.round,
                    "holding": self._held is not None or self._waiting,
                }
            )
            return
        if w is not None and now >= w.sent + PROBE:
            # a resend carries what happened here since the first: if the first copy was
            # lost, this one is the pass, and work that came meanwhile must blacken it
            self._look()
            if self.black and not w.msg.black:
                w.msg = w.msg._replace(black=True)
            w.sent = now
            self.node.send(w.dest, w.msg)
        self._arm()

    @property
    def finished(self) -> bool:
        return self._done

    # --- the node's work ------------------------------------------------------------

    def _look(self) -> bool:
        """Read the node's work; blacken if it is busy or a hand-off changed its counts
        since the last look. Returns whether it is idle."""
        w = self.node.work()
        counts = (w.sent, w.received)
        if not w.idle or (self._counts is not None and counts != self._counts):
            self.black = True
        self._counts = counts
        return w.idle

    def _whiten(self) -> None:
        self.black = not self._look()

    # --- the token ------------------------------------------------------------------

    def _begin_round(self) -> None:
        if not self._look():
            self._waiting = True
            return
        self._waiting = False
        self.round += 1
        self.black = False  # idle now; busy at any moment from here on blackens it
        bits = bytearray(len(self._index) // 8 + 1)
        self._mark(bits, self.node.me)
        self._last = (self.round, 0)
        self._forward(Token(self.wave, self.round, 0, bytes(bits), [self._index[self.node.me]], False))

    def _on_token(self, sender: str, msg: Token) -> None:
        if len(msg.visited) != len(self._index) // 8 + 1:
            raise WaveError(
                f"{self.node.me}: token of wave {self.wave} from {sender}: its visited set has "
                f"{len(msg.visited)} bytes, not {len(self._index) // 8 + 1}"
            )
        path = msg.path
        if not path or not all(type(i) is int and 0 <= i < len(self._names) for i in path):
            raise WaveError(
                f"{self.node.me}: token of wave {self.wave} from {sender}: its path {path[:8]!r} "
                f"is not a list of node indices"
            )
        key = (msg.round, msg.hop)
        if key <= self._last:  # a resend or the network's duplicate: answer again
            up = self._upstream
            holding = up is not None and (up[1], up[2]) == key
            self.node.send(sender, TokenAck(self.wave, msg.round, msg.hop, not holding))
            return
        if self.initiator and msg.round != self.round:
            raise WaveError(
                f"{self.node.me}: token of round {msg.round} of wave {self.wave}, which is in round {self.round}"
            )
        self._last = key
        self.round = msg.round
        # the token is back here: the hop this node made was taken (its answer may still
        # be on the way), so the node that gave it the token before may stop watching
        self._tell_upstream()
        self._watch = None
        self._upstream = (sender, msg.round, msg.hop)
        self.node.send(sender, TokenAck(self.wave, msg.round, msg.hop, False))
        bits = bytearray(msg.visited)
        if not self._visited(bits, self.node.me):  # the first visit of this round
            self._mark(bits, self.node.me)
            self._held = msg._replace(visited=bytes(bits), path=[*path, self._index[self.node.me]])
            self._pass_on()
        else:  # on the way back: pass on at once, but carry what happened here since
            token = msg._replace(black=msg.black or self.black)
            self._whiten()
            self._forward(token)

    def _pass_on(self) -> None:
        """Pass the held token on, once the node is idle."""
        if not self._look():
            return
        held = self._held
        assert held is not None
        token = held._replace(black=held.black or self.black)
        self._held = None
        self.black = False
        self._forward(token)

    def _forward(self, token: Token) -> None:
        bits = token.visited
        nxt = next((n for n in self.node.neighbours if not self._visited(bits, n)), None)
        if nxt is None:  # this node's part is done: back along the path
            path = token.path[:-1]
            if not path:  # back at the initiator with nothing left to visit
                if self.initiator:
                    self._round_over(token)
                else:  # the initiator's instance is gone: this round cannot end
                    self._tell_upstream()
                return
            token = token._replace(path=path)
            nxt = self._names[path[-1]]
        out = token._replace(hop=token.hop + 1)
        self._last = max(self._last, (out.round, out.hop))
        self._watch = _Watch(nxt, out, self.node.now)
        self.hops += 1
        self.node.send(nxt, out)

    def _round_over(self, token: Token) -> None:
        self._tell_upstream()
        idle = self._look()
        if idle and not token.black and not self.black:
            self._decide({"terminated": True, "rounds": self.round, "failed": self.rounds_failed})
            return
        self.rounds_failed += 1
        self._waiting = True
        self._begin_round()

    def _on_ack(self, sender: str, msg: TokenAck) -> None:
        w = self._watch
        if w is None or w.dest != sender or (w.msg.round, w.msg.hop) != (msg.round, msg.hop):
            return  # an answer to a hop this node no longer answers for
        w.heard = self.node.now
        if not w.answered:
            w.answered = True
            self._tell_upstream()
        if msg.passed:
            self._watch = None

    def _tell_upstream(self) -> None:
        up = self._upstream
        if up is not None:
            self._upstream = None
            self.node.send(up[0], TokenAck(self.wave, up[1], up[2], True))

    # --- helpers ------------------------------------------------------------------------

    def _decide(self, result: dict[str, Any]) -> None:
        self._done = True
        self._watch = None
        self._held = None
        self.node.set_deadline(None)
        self.node.decide(result)

    def _arm(self) -> None:
        if self._done:
            return
        at = self._ends
        w = self._watch
        if w is not None:
            due = min(w.sent + PROBE, w.heard + self.lost_after)
            at = due if at is None else min(at, due)
        self.node.set_deadline(at)

    def _mark(self, bits: bytearray, name: str) -> None:
        i = self._index[name]
        bits[i >> 3] |= 1 << (i & 7)

    def _visited(self, bits: bytes | bytearray, name: str) -> bool:
        i = self._index[name]
        return bool(bits[i >> 3] & (1 << (i & 7)))

    # --- the kind -----------------------------------------------------------------------

    @classmethod
    def refuse(cls, graph: Graph) -> str | None:
        if not graph.nodes:
            return "the topology has no nodes"
        seen = {graph.nodes[0]}
        todo = [graph.nodes[0]]
        adj: dict[str, set[str]] = {n: set() for n in graph.nodes}
        for p, c in graph.edges:
            adj[p].add(c)
            adj[c].add(p)
        while todo:
            for n in adj[todo.pop()]:
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        if len(seen) < len(graph.nodes):
            cut = [n for n in graph.nodes if n not in seen]
            return (
                f"not connected: {', '.join(cut[:5])}{' ...' if len(cut) > 5 else ''} cannot be reached "
                f"from {graph.nodes[0]} even ignoring the edges' direction (the token visits every node)"
            )
        return None

    @classmethod
    def check(cls, graph: Graph, run: WaveRun) -> list[str]:
        """What a run shows without the global truth: one decision at most (exactly one
        when complete), a detection only by an initiator, messages only on links. The
        safety that matters — no detection while work runs — needs the truth the
        simulator keeps (daemon/sim/termination.py)."""
        bad = []
        links = {(p, c) for p, c in graph.edges} | {(c, p) for p, c in graph.edges}
        for channel in run.per_channel:
            if channel not in links:
                bad.append(f"a message on {channel[0]} -> {channel[1]}, which is not a link")
        if len(run.decisions) > 1:
            bad.append(f"{len(run.decisions)} decisions: {run.decisions}")
        if run.complete and not run.decisions:
            bad.append("no decision")
        for node, result in run.decisions:
            if isinstance(result, dict) and result.get("terminated") and node not in run.initiators:
                bad.append(f"{node} announced termination but is not the initiator")
        return bad
