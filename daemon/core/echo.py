"""The echo wave, one node's part of it, with a convergecast of node states.

Theory of operation (Chang 1982, Segall 1983; Tel, *Introduction to Distributed
Algorithms*, 2nd ed., algorithm 6.5, section 6.2.3):

The wave runs on the *undirected* view of the topology: an edge parent→child is one
bidirectional link, so ``neighbours`` is parents ∪ children. One node initiates.

- The initiator sends EXPLORE to every neighbour. When it has heard from every
  neighbour, it decides.                                                    [Tel 6.5, init]
- Any other node, on the first message of the wave (from q), takes q as its father and
  sends EXPLORE to every neighbour but q. When it has heard from every neighbour, it
  sends ECHO to its father.                                          [Tel 6.5, non-init]
- "Heard from" counts distinct senders, not messages: a duplicated message can never
  trigger an early echo. An ECHO from q makes q a child in the wave's spanning tree; an
  EXPLORE from a node that is not the father only says "heard from" (a non-tree edge).
- Each node sends exactly deg(p) messages, so a wave costs exactly 2|E| messages and
  about twice the diameter in time. A one-node network decides at once.

The convergecast: every node contributes one entry ``(node, father, state)`` and sends
its own entry followed by its children's entries with its ECHO; children are kept in a
dict keyed by sender, so a duplicated ECHO replaces rather than adds. At the decision
the initiator holds exactly one entry per node, and the father pointers are a spanning
tree rooted at the initiator.

A node samples its state once, when it joins the wave (its node's ``sample``, with the
wave's ``detail`` parameter). The samples are taken at different moments, so the result
is not a consistent snapshot by itself; the node makes the cut consistent with
:meth:`EchoWave.presample`, Lai and Yang's rule: before handling a message sent after
its sender sampled the wave, sample first (the kind is a ``snapshot`` kind:
daemon/core/wave.py). A sample that counts sends (the node's has ``sent``) gets this
node's sends and the neighbours it gave up on (``missing``) as it echoes.

On the wave interface (daemon/core/wave.py): messages EXPLORE (wire name ``explore``,
nothing but the wave id) and ECHO (``echo``: the entries, a :class:`Stream` that travels
as one msgpack stream; an ECHO never brings the wave to a node, ``joins`` false);
parameter ``detail`` (samples list every task, as the balancer needs); the initiator
decides with the entries (reported as ``echo.result``); the deadline is the budget the
node gives it (the operator's timeout, shrunk along the hops). State per node: O(degree)
plus the entries of its subtree, which it only passes on.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

from daemon.core.wave import Blob, Flag, Graph, MessageType, Stream, Wave
from daemon.core.waves import WaveError

Entry = tuple  # (node, father, state); father is None at the initiator
MAX_ENTRIES_BYTES = 1 << 26  # an ECHO's stream (the frame's own limit, daemon/wire.py, is lower)


class Explore(NamedTuple):
    wave: str


class Echo(NamedTuple):
    wave: str
    entries: tuple  # of Entry and packed runs (bytes): the sender's own entry first, then its subtree's


class EchoWave(Wave):
    """One node's state in one echo wave (wave ids keep concurrent waves apart)."""

    name = "echo"
    tag = "e"
    summary = "Tel 6.5: a spanning tree and every node's sample, decided at the initiator (2|E| messages)"
    messages = (MessageType("explore", Explore, {}),
                MessageType("echo", Echo, {"entries": Blob(MAX_ENTRIES_BYTES)}, joins=False))
    params = {"detail": Flag()}
    defaults = {"detail": False}
    snapshot = True
    decided_as = "echo.result"
    __slots__ = ("me", "neighbours", "_neighbour_set", "father", "initiator", "joined", "finished", "heard",
                 "children", "sampled", "state", "sent", "result", "missing")

    def __init__(self, node, wave: str, params: dict[str, Any] | None = None):
        self.node = node
        self.wave = wave
        self.params = params if params is not None else {}
        self.finished = False  # echoed to the father, or decided
        self.sampled = False  # a flag, not ``state is None``: a sample may be None
        self.missing: tuple | None = None  # neighbours given up on (see expire)
        me = self.me = node.me
        self.neighbours = neighbours = node.neighbours  # a tuple, in the node's order
        self._neighbour_set = _set_of(neighbours)
        if me in self._neighbour_set:
            raise ValueError(f"node {me!r} lists itself as a neighbour")
        self.father: Any = None
        self.initiator = False
        self.joined = False
        self.heard: set = set()
        self.children: dict = {}  # child -> its Echo's entries
        self.state: Any = None
        self.sent = 0
        self.result: list[Entry] | None = None  # the initiator's, once decided

    @property
    def decided(self) -> bool:
        return self.result is not None

    def presample(self) -> None:
        """Take this node's sample now, before it joins (Lai–Yang: a message from a node
        that has already sampled this wave is about to change what the sample covers).
        Before the wave's own message has come its ``detail`` is unknown: a detailed
        sample then (the more complete one)."""
        if not self.sampled:
            self.sampled = True
            self.state = self.node.sample(self.params.get("detail", True))

    def start(self) -> None:
        """Initiate the wave here."""
        if self.joined:
            raise WaveError(f"{self.me}: wave {self.wave} already reached this node; cannot initiate it")
        self.initiator = True
        self._join(None)

    def receive(self, sender, msg) -> None:
        """Handle EXPLORE or ECHO from ``sender``.

        Raises :class:`WaveError` (and changes nothing) for a message of another wave or
        of another type, a sender that is not a neighbour, or an ECHO that cannot be one:
        from the father, or before the wave reached this node (a node echoes only to the
        father it chose on an EXPLORE of ours, so neither can happen on a sound network).
        """
        kind = type(msg)
        if kind is not Explore and kind is not Echo:
            raise WaveError(f"{self.me}: wave {self.wave}: {kind.__name__} from {sender!r} is neither EXPLORE nor ECHO")
        if msg.wave != self.wave:
            raise WaveError(f"{self.me}: {kind.__name__} of wave {msg.wave} from {sender!r} handed to wave {self.wave}")
        if sender not in self._neighbour_set:
            raise WaveError(f"{self.me}: {kind.__name__} of wave {self.wave} from {sender!r}, which is not a neighbour")
        if kind is Echo:
            # Checked before anything changes: a bad ECHO must not make its sender the
            # father of a node that has not joined yet.
            if not self.joined:
                raise WaveError(f"{self.me}: ECHO of wave {self.wave} from {sender!r} before the wave reached this node")
            if sender == self.father:
                raise WaveError(f"{self.me}: ECHO of wave {self.wave} from its father {sender!r}")
        if self.finished:
            return  # a duplicate: every neighbour has been heard already
        if not self.joined:
            self._join(sender)
        if kind is Echo:
            entries = msg.entries
            # keyed by sender: a duplicate replaces; a stream off the wire is one run
            self.children[sender] = (entries,) if type(entries) is bytes else entries
        self.heard.add(sender)
        self._finish_if_heard_all()

    def expire(self) -> None:
        """The wave's deadline at this node: stop waiting for the neighbours not heard
        from (dead, stalled or cut off) and echo to the father — or decide, at the
        initiator — with the entries that came. ``missing`` names those neighbours.
        Nothing happens before the node joined or after it finished.

        Not part of Tel's algorithm, which assumes reliable links and live nodes: it
        trades "exactly one entry per node" for an answer in bounded time. A node that
        gave up ignores what comes later, like any duplicate, so a late ECHO from a
        child that was only slow leaves that child's subtree out of the result."""
        if not self.joined or self.finished:
            return
        self.missing = tuple(q for q in self.neighbours if q not in self.heard)
        self._finish_if_heard_all(give_up=True)

    give_up = expire

    def _join(self, father) -> None:
        self.joined = True
        self.father = father
        node = self.node
        if not self.sampled:  # presample, inline
            self.sampled = True
            self.state = node.sample(self.params.get("detail", True))
        budget = node.budget()
        if budget is not None:  # the node's share of the operator's timeout
            node.set_deadline(node.now + max(0.0, budget))
        msg = Explore(self.wave)
        for q in self.neighbours:
            if q != father:
                node.send(q, msg)
                self.sent += 1
        self._finish_if_heard_all()

    def _finish_if_heard_all(self, give_up: bool = False) -> None:
        if self.finished or (len(self.heard) < len(self._neighbour_set) and not give_up):
            return
        self.finished = True  # the node closes a finished instance, its deadline with it
        entries = [(self.me, self.father, self.state)]
        for q in self.neighbours:  # neighbour order, so the result does not depend on timing
            entries.extend(self.children.get(q, ()))
        if self.initiator:
            self.result = entries
            self._complete_sample()
            self.node.decide(Stream(entries))
            return
        self.sent += 1
        self._complete_sample()
        self.node.send(self.father, Echo(self.wave, Stream(entries)))

    def _complete_sample(self) -> None:
        """Fill in what is known only as the node echoes: its sends, whom it gave up on
        (only in a sample that counts sends: the node's). The entry is packed after this
        event, so the sample dict can still be completed here."""
        state = self.state
        if type(state) is dict and "sent" in state:
            state["sent"] = self.sent
            if self.missing:
                state["missing"] = list(self.missing)

    # --- the kind as a whole -----------------------------------------------------------

    @classmethod
    def refuse(cls, graph: Graph) -> str | None:
        if not _connected(graph):
            return "the echo wave needs a connected network (its undirected view): some nodes cannot be reached"
        return None

    @classmethod
    def initiators(cls, graph: Graph, chosen: tuple[str, ...] = ()) -> tuple[str, ...]:
        if chosen:
            return chosen[:1]
        sources = [n for n in graph.nodes if not graph.parents(n)]
        return (sources[0],) if sources else graph.nodes[:1]

    @classmethod
    def check(cls, graph: Graph, run) -> list[str]:
        """Exactly 2|E| messages, one decision at the initiator, every node reached."""
        problems = []
        links = {frozenset(e) for e in graph.edges}
        if run.complete and run.messages != 2 * len(links):
            problems.append(f"{run.messages} messages, expected 2|E| = {2 * len(links)}")
        deciders = [n for n, _ in run.decisions]
        if deciders and deciders != list(run.initiators[:1]):
            problems.append(f"decided at {deciders}, expected once at the initiator {run.initiators[:1]}")
        if run.complete and not deciders:
            problems.append("no decision")
        return problems


    @classmethod
    def describe(cls, result, nodes: int) -> str:
        return f"decided: {result}/{nodes} nodes"  # the entries the result holds


@lru_cache(maxsize=4096)
def _set_of(neighbours: tuple) -> frozenset:
    """The set of a node's neighbours, made once for all its waves."""
    return frozenset(neighbours)


def _connected(graph: Graph) -> bool:
    if not graph.nodes:
        return True
    seen, todo = {graph.nodes[0]}, [graph.nodes[0]]
    while todo:
        n = todo.pop()
        for q in graph.neighbours(n):
            if q not in seen:
                seen.add(q)
                todo.append(q)
    return len(seen) == len(graph.nodes)
