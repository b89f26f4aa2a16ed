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

A node samples its state once, when it joins the wave, by calling the ``sample``
function it is given. The samples are taken at different moments, so the result is
not a consistent snapshot by itself; a driver that needs one for a quantity moved by
messages (tasks handed between nodes) makes its cut consistent with :meth:`presample`,
Lai and Yang's rule: before handling a message sent after its sender sampled the wave,
sample first.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Iterable, NamedTuple

from daemon.core.waves import NOTHING, Step, WaveError

Entry = tuple  # (node, father, state); father is None at the initiator


class Explore(NamedTuple):
    wave: str


class Echo(NamedTuple):
    wave: str
    entries: tuple  # of Entry: the sender's own entry first, then its subtree's


class EchoWave:
    """One node's state in one echo wave (wave ids keep concurrent waves apart)."""

    __slots__ = (
        "me", "wave", "neighbours", "_neighbour_set", "father", "initiator", "joined",
        "finished", "heard", "children", "sampled", "state", "sent", "result", "missing",
    )

    def __init__(self, me: Hashable, neighbours: Iterable[Hashable], wave: str):
        self.me = me
        self.wave = wave
        self.neighbours = tuple(neighbours)
        self._neighbour_set = frozenset(self.neighbours)
        if me in self._neighbour_set:
            raise ValueError(f"node {me!r} lists itself as a neighbour")
        self.father: Hashable | None = None
        self.initiator = False
        self.joined = False
        self.finished = False  # echoed to the father, or decided
        self.heard: set = set()
        self.children: dict = {}  # child -> its Echo's entries
        self.sampled = False  # a flag, not ``state is None``: a sample may be None
        self.state: Any = None
        self.sent = 0
        self.result: list[Entry] | None = None  # the initiator's, once decided
        self.missing: tuple | None = None  # neighbours given up on (see give_up)

    @property
    def decided(self) -> bool:
        return self.result is not None

    def presample(self, sample: Callable[[], Any]) -> None:
        """Take this node's sample now, before it joins (Lai–Yang: a message from a node
        that has already sampled this wave is about to change what the sample covers)."""
        if not self.sampled:
            self.sampled = True
            self.state = sample()

    def start(self, sample: Callable[[], Any]) -> Step:
        """Initiate the wave here."""
        if self.joined:
            raise WaveError(f"{self.me}: wave {self.wave} already reached this node; cannot initiate it")
        self.initiator = True
        return self._join(None, sample)

    def receive(self, sender: Hashable, msg: Explore | Echo, sample: Callable[[], Any]) -> Step:
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
            return NOTHING  # a duplicate: every neighbour has been heard already
        sends = self._join(sender, sample).sends if not self.joined else []
        if kind is Echo:
            self.children[sender] = msg.entries  # keyed by sender: a duplicate replaces
        self.heard.add(sender)
        return self._finish_if_heard_all(sends)

    def give_up(self) -> Step:
        """The wave's deadline at this node: stop waiting for the neighbours not heard
        from (dead, stalled or cut off) and echo to the father — or decide, at the
        initiator — with the entries that came. ``missing`` names those neighbours.
        Nothing happens before the node joined or after it finished.

        Not part of Tel's algorithm, which assumes reliable links and live nodes: it
        trades "exactly one entry per node" for an answer in bounded time. A node that
        gave up ignores what comes later, like any duplicate, so a late ECHO from a
        child that was only slow leaves that child's subtree out of the result."""
        if not self.joined or self.finished:
            return NOTHING
        self.missing = tuple(q for q in self.neighbours if q not in self.heard)
        return self._finish_if_heard_all([], give_up=True)

    def _join(self, father: Hashable | None, sample: Callable[[], Any]) -> Step:
        self.joined = True
        self.father = father
        self.presample(sample)
        sends = [(q, Explore(self.wave)) for q in self.neighbours if q != father]
        self.sent += len(sends)
        return self._finish_if_heard_all(sends)

    def _finish_if_heard_all(self, sends: list, give_up: bool = False) -> Step:
        if self.finished or (len(self.heard) < len(self._neighbour_set) and not give_up):
            return Step(sends, False)
        self.finished = True
        entries = [(self.me, self.father, self.state)]
        for q in self.neighbours:  # neighbour order, so the result does not depend on timing
            entries.extend(self.children.get(q, ()))
        if self.initiator:
            self.result = entries
            return Step(sends, True)
        sends.append((self.father, Echo(self.wave, tuple(entries))))
        self.sent += 1
        return Step(sends, False)
