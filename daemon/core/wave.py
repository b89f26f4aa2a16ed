"""The wave interface: what a wave algorithm is to the node, the simulator and ``ctl``.

Theory of operation (ARCHITECTURE.md, "The waves"; Tel, *Introduction to Distributed
Algorithms*, 2nd ed., chapter 6). A wave algorithm is a protocol in which every
computation contains at least one *decide* event, causally preceded by an event at every
node (or, for the algorithms that are not waves in Tel's strict sense, such as an
election or termination detection, by what the algorithm says). Echo and Finn are two of
the family; Tarry's traversal, the tree algorithm, the phase algorithm, Chang–Roberts'
election and a termination detector are others. Each is one :class:`Wave` subclass:

- **Its messages** (:attr:`Wave.messages`): ``typing.NamedTuple`` classes whose first
  field is ``wave`` (the wave id), each with a wire name and the bound of every field
  (:class:`MessageType`, :class:`Text`, :class:`Int`, :class:`Num`, :class:`Flag`,
  :class:`Names`, :class:`Items`, :class:`Blob`). The edge (daemon/wire.py) checks a frame
  against them before a message exists, as it does for every other message: a wave never
  sees a field of the wrong type or out of its bound.
- **Its start parameters** (:attr:`Wave.params`): what the operator gives when it starts
  a wave (Finn: how many tasks of which cost each deciding node enqueues), bounded the
  same way. They travel with the wave's messages, so every node knows them.
- **Its per-node state**: the instance, one per node and wave, created by the node when
  the operator starts the wave there or when the first message of the wave arrives from a
  node it may hear from (:attr:`Wave.hears_from`). The state must be bounded (by the
  node's degree or the cluster's size; each kind says which in its docstring); the node
  bounds the number of live instances.
- **Its events**: :meth:`Wave.start` (the operator's start here: the initiator),
  :meth:`Wave.receive` (a message of the wave from a neighbour), :meth:`Wave.expire`
  (the deadline the wave set through :meth:`WaveNode.set_deadline` has come), and, for a
  kind that watches the node's own work (:attr:`Wave.watches_work`), :meth:`Wave.work`.
  Each event may call the node's :class:`WaveNode` methods: send to a neighbour, decide
  (once per node and wave: a result reported to the operator that started the wave),
  sample the node's state, enqueue tasks, set a deadline. An event that cannot be accepted
  raises :class:`~daemon.core.waves.WaveError` and must change nothing; anything else a
  wave raises is contained by the node (counted, never fatal: daemon/core/node.py).
- **What it needs of the topology** (:meth:`Wave.refuse`): the reason it cannot run on a
  graph (not strongly connected, not a ring, not a tree), or None.
- **What it guarantees** (:meth:`Wave.check`): the violations of its invariant in one
  run (:class:`WaveRun`, recorded by the simulator or read from a real cluster's trace),
  an empty list when the run is correct. Exact message counts, who decides, what.

The node (daemon/core/node.py) owns everything around the algorithm that is the same for
every kind: wave ids and their age, who may send what, the deadline and its budget along
the hops, report routing to the operator, the bounds on live waves, containment of
errors, write-ahead persistence, the Lai–Yang tags of a consistent cut for the kinds that
sample (:attr:`Wave.snapshot`). The simulator (daemon/sim/) drives the same classes over
a seeded network. Kinds are found by name in :func:`daemon.plugins.wave_kinds`: the
built-in ones, and third-party ones through the entry-point group ``echofinn.waves``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

# --- bounds of a field --------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A string of at most ``limit`` characters."""

    limit: int = 256


@dataclass(frozen=True)
class Int:
    """An integer in ``lo ..= hi``."""

    lo: int = 0
    hi: int = 1 << 40


@dataclass(frozen=True)
class Num:
    """A finite number (int or float) with ``lo < x <= hi``."""

    lo: float = 0.0
    hi: float = 1e9


@dataclass(frozen=True)
class Flag:
    """A boolean."""


@dataclass(frozen=True)
class Names:
    """A list of at most ``limit`` node names of the cluster (the node checks membership)."""

    limit: int = 1 << 20


@dataclass(frozen=True)
class Items:
    """A list of at most ``limit`` plain values (msgpack's types); the frame bounds the rest."""

    limit: int = 1 << 16


@dataclass(frozen=True)
class Blob:
    """Bytes, at most ``limit`` of them."""

    limit: int = 1 << 26


Bound = Text | Int | Num | Flag | Names | Items | Blob


@dataclass(frozen=True)
class MessageType:
    """One message of a wave: its wire name (``"<kind>.<name>"`` for a new kind), the
    NamedTuple class the core handles (first field ``wave``), and the bound of each
    field but ``wave`` (in the class's field order).

    ``joins``: whether the message may bring the wave to a node it has not reached yet
    (the node then creates the instance). Echo's ECHO may not: it only ever answers an
    EXPLORE of the receiver's, so one for a wave unknown at the receiver is late (the
    receiver gave up or finished), not a wave to join."""

    name: str
    cls: type
    fields: dict[str, Bound]
    joins: bool = True


class Stream(tuple):
    """Values, and runs of them already packed (bytes), that travel as one msgpack stream
    in a bytes field (a :class:`Blob` field, or a decision's result): a node appends the
    runs it received byte for byte instead of decoding and re-encoding them, and only the
    final reader unpacks (echo's convergecast: daemon/wire.py ``pack_entries``)."""

    __slots__ = ()


# --- what a wave may do at its node ---------------------------------------------------


class WaveNode(Protocol):
    """The node as one wave instance sees it. The node core and the simulator each
    implement it; a wave keeps the one it is given at construction."""

    me: str  # this node's name
    parents: tuple[str, ...]  # in-neighbours (edges parent -> me)
    children: tuple[str, ...]  # out-neighbours (edges me -> child)
    neighbours: tuple[str, ...]  # parents then children, each once: the undirected view
    nodes: frozenset[str]  # every node of the cluster

    @property
    def now(self) -> float:
        """The node's time (s), monotonic."""

    def send(self, dest: str, msg: Any) -> None:
        """Send ``msg`` (one of the wave's message types) to neighbour ``dest``."""

    def decide(self, result: Any = None) -> None:
        """This node decides, with ``result`` (msgpack's plain types) reported to the
        operator that started the wave. At most once per node and wave."""

    def sample(self, detail: bool = False) -> dict:
        """This node's state now: tasks queued and running, CPUs, load (what echo
        collects; daemon/core/tasks.py ``sample``)."""

    def enqueue(self, tasks: int, cost: float) -> list[str]:
        """New work at this node, labelled with the wave: returns the task ids."""

    def set_deadline(self, at: float | None) -> None:
        """Call :meth:`Wave.expire` at time ``at`` (None: no deadline)."""

    def budget(self) -> float | None:
        """Seconds left of the wave's budget here (the operator's timeout, shrunk along
        the hops), or None if the wave has none."""

    def work(self) -> "Work":
        """The node's own work now, for a kind that watches it (termination detection)."""

    # The node sends only to the neighbours its kind may send to (``hears_from`` read the
    # other way round: "parents" kinds send to children only), decides at most once (a
    # later call is ignored), and counts every send (``sent``).


@dataclass(frozen=True)
class Work:
    """What a termination detector needs of its node: whether it is idle (no task queued
    or running, no move of its own unanswered) and how many hand-off messages carrying
    tasks (TRANSFERs: daemon/core/tasks.py) it has sent and received since this
    incarnation of the node started, resends and duplicates included (Safra's basic
    messages; a restarted node counts from 0 again)."""

    idle: bool
    sent: int
    received: int


# --- the algorithm ----------------------------------------------------------------


class Wave:
    """One node's part in one wave of one kind. Subclass it; set the class attributes;
    implement the events. See the module text for the contract."""

    name: ClassVar[str] = ""  # the kind: "echo", "tarry", ... (a command's argument)
    tag: ClassVar[str] = ""  # the kind's mark in wave ids; defaults to ``name``
    summary: ClassVar[str] = ""  # one line for ``ctl wave --list``
    messages: ClassVar[tuple[MessageType, ...]] = ()
    params: ClassVar[dict[str, Bound]] = {}
    defaults: ClassVar[dict[str, Any]] = {}  # a parameter the operator may leave out
    hears_from: ClassVar[str] = "neighbours"  # or "parents": whose messages it accepts
    snapshot: ClassVar[bool] = False  # samples the node: joins the Lai–Yang cut
    watches_work: ClassVar[bool] = False  # wants :meth:`work` when the node's work changes
    initiators_allowed: ClassVar[str] = "one"  # "one", or "many" (Finn: one per source component)
    # "one": a start at a node the wave already reached is refused as a duplicate;
    # "many": it is handed to :meth:`start` (Finn's repeated initiate does nothing).
    decided_as: ClassVar[str] = ""  # what traces call its decision's report; "<name>.decided"
    missing: tuple = ()  # the neighbours given up on at the deadline: the node reconnects to them

    def __init__(self, node: WaveNode, wave: str, params: dict[str, Any]):
        self.node = node
        self.wave = wave
        self.params = params

    # events ----------------------------------------------------------------------

    def start(self) -> None:
        """The operator starts the wave at this node."""
        raise NotImplementedError

    def receive(self, sender: str, msg: Any) -> None:
        """A message of this wave from ``sender`` (a node :attr:`hears_from` allows)."""
        raise NotImplementedError

    def expire(self) -> None:
        """The deadline set with :meth:`WaveNode.set_deadline` has come."""

    def work(self) -> None:
        """The node's own work changed (only for :attr:`watches_work` kinds)."""

    def presample(self) -> None:
        """Lai–Yang (only for :attr:`snapshot` kinds): a hand-off message from a node
        that has sampled this wave is about to change what this node's sample covers:
        sample now, if not yet."""

    @property
    def sampled(self) -> bool:
        """Whether this node has sampled the wave (its hand-off messages carry the tag)."""
        return False

    @property
    def finished(self) -> bool:
        """This node's part is over: the node may forget the instance (remembering the
        id, so that a late duplicate does not start it again)."""
        return False

    # the kind as a whole -----------------------------------------------------------

    @classmethod
    def refuse(cls, graph: "Graph") -> str | None:
        """Why this kind cannot run on ``graph`` (a sentence), or None."""
        return None

    @classmethod
    def initiators(cls, graph: "Graph", chosen: tuple[str, ...] = ()) -> tuple[str, ...]:
        """Where the operator starts it: ``chosen`` if given, else the kind's default
        (the graph's first node)."""
        return chosen or graph.nodes[:1]

    @classmethod
    def deciders(cls, graph: "Graph", initiators: tuple[str, ...]) -> int:
        """How many decisions make a run complete (the operator waits for that many)."""
        return 1

    @classmethod
    def check(cls, graph: "Graph", run: "WaveRun") -> list[str]:
        """The violations of the kind's invariant in ``run`` ([] when correct)."""
        return []

    @classmethod
    def describe(cls, result: Any, nodes: int) -> str:
        """A decision in a few words, for traces (``nodes``: the cluster's size; a
        :class:`Stream` result is given as the number of values it holds)."""
        return "decided"


# --- graphs and runs, for refuse() and check() -------------------------------------------


@dataclass(frozen=True)
class Graph:
    """A topology as the kinds see it: node names in the topology's order and the
    directed edges (parent, child)."""

    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]

    def parents(self, n: str) -> tuple[str, ...]:
        return tuple(p for p, c in self.edges if c == n)

    def children(self, n: str) -> tuple[str, ...]:
        return tuple(c for p, c in self.edges if p == n)

    def neighbours(self, n: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.parents(n) + self.children(n)))

    @classmethod
    def of(cls, topology: Any) -> "Graph":
        """The graph of a :class:`daemon.topology.Topology`."""
        names = tuple(topology.names)
        return cls(names, tuple((p, c) for c in names for p in topology.parents(c)))


@dataclass
class WaveRun:
    """What one run of a wave did, as :meth:`Wave.check` judges it: the initiators, every
    send per directed channel (original sends, not the network's duplicates), every
    decision in order (node, result), and the nodes the wave reached. ``complete`` is
    false when the run was cut short (a limit, a dead node): a check may then only
    claim safety, not liveness."""

    initiators: tuple[str, ...]
    per_channel: dict[tuple[str, str], int] = field(default_factory=dict)
    decisions: list[tuple[str, Any]] = field(default_factory=list)
    reached: set[str] = field(default_factory=set)
    complete: bool = True

    @property
    def messages(self) -> int:
        return sum(self.per_channel.values())
