"""The whole node as a state machine: messages and time in, effects out.

Theory of operation (ARCHITECTURE.md, "The node core"; the sans-IO style of h11 and
aioquic): :class:`NodeCore` owns everything a node decides — its waves, of any kind
(daemon/core/wave.py; the kinds installed are daemon/plugins.py's: echo, Finn, ...),
its task board and the exactly-once hand-off (daemon/core/tasks.py), the Lai–Yang tags
that make the samples of a ``snapshot`` kind (echo) a consistent cut, and the journal
records that make the board survive a crash (daemon/core/journal.py). It
reads no clock, opens no socket, and never raises on a message. Two drivers run it: the
ZeroMQ daemon (daemon/node.py) and the simulator (daemon/sim/chaos.py, daemon/sim/balance.py).

    handle(sender, epoch, message, now) -> list[Effect]   a message arrived
    tick(now) -> list[Effect]                              time passed
    next_deadline() -> float                               call tick() by then

Effects, executed by the driver in order: :class:`Persist` (journal records; always
before any message of the same step: write-ahead), :class:`Send` (to a node's inbox),
:class:`Reply` (to an operator's routing id), :class:`SetBusy` (the burner's busy
slots), :class:`Reconnect` (the link to a peer seems to lose messages: reopen it),
:class:`ShowTrace` (an operator asked for the node's flight record, which the driver
keeps: daemon/trace/recorder.py). A node an operator watches (``balance.watch``) asks
it for a balancing round when work lands here or a slot frees with nothing queued, as a
``balance.wanted`` :class:`Reply`, debounced (daemon/core/asking.py).

Who may say what. ``sender`` is the routing id the ROUTER saw. The id of a node of the
topology may send only node messages (wave, transfer, ack, forget, relink);
anything else is an operator and may send only operator requests (ping, wave.start,
submit, move, trace.get, balance.watch). A routing id is not proof of identity — that is CURVE's job
(daemon/security.py) — but within these rules even a forged id cannot make a node crash,
wedge, or grow without bound:

- every field is bounded and every number finite at the edge (daemon/wire.py with the
  limits of daemon/core/messages.py); times (epochs, wave starts, expiries) must fall
  within :data:`MAX_SKEW` of now;
- wave state is created only by an operator's start or a neighbour's message (an
  in-neighbour's, for a kind that ``hears_from`` its parents, as Finn), after the sender
  is checked, and only for a wave id whose tag is the kind's; at most :data:`MAX_WAVES`
  live wave records and :data:`MAX_DONE_WAVES` finished ones are kept, and a live one
  is forgotten :data:`WAVE_TTL` after its last message unless its instance waits for a
  deadline it set (bounded by the wave's budget, at most an hour: termination
  detection's initiator hears nothing while a long task holds the token elsewhere);
- an ACK counts only from the move's destination, a FORGET only from its donor;
- anything a handler raises is contained: counted, answered to an operator with an
  error, never fatal (the ``internal`` counter must stay 0: tests check it);
- anything a wave kind raises in an event, but a WaveError, is contained like a hostile
  frame (:meth:`NodeCore._fault`): counted in ``wave_faults``, told to the operator the
  wave reports to, the instance dropped (its id remembered as done) and the messages of
  that event withheld; the node keeps serving.

Waves, whatever their kind (daemon/core/wave.py). One record per instance
(:class:`_Wave`), which is also the instance's ``WaveNode``: the kind sends through it
(only to the neighbours its ``hears_from`` allows, each message of one of its types;
a message that may bring the wave to a node carries the wave's parameters, its budget
along the hops and the operator's routing id, the others nothing), decides through it
(once; the result is replied to that operator as ``wave.decided``), samples the node,
enqueues tasks, sets its deadline (the node calls ``expire`` then, and reopens its links
to the neighbours the kind names ``missing``), and reads the node's work (``Work``:
idle, TRANSFERs sent and received), which a ``watches_work`` kind is told of whenever
it changes. A ``one``-initiator kind refuses a second start where the wave already is;
a ``many`` kind hands it to ``start``.

Time. ``now`` is the driver's wall clock, read once per loop turn. The core keeps it
monotonic: a clock that steps back is held (an offset), never a crash; a step forward
simply ends tasks early.

A gap of more than :data:`STALLED` between two steps means the process did not run
(stopped by SIGSTOP, swapped out, starved): the driver steps at least every
:data:`HOUSEKEEPING` while it runs. Whatever reached the node meanwhile is still unread
— the driver's first step after the gap is the overdue tick, and the ZeroMQ I/O thread,
stopped too, has yet to move the bytes from the kernel to the inbox. So for
:data:`SETTLE` seconds after a gap the node takes no transfer back: the take-back is the
one decision that reads silence as an answer, and the ACK it would contradict may be
among the unread messages. A donor stopped past a move's deadline plus grace would
otherwise take back tasks its destination had accepted and acknowledged in time, and
they would run twice (the tasks wait SETTLE longer instead; the destination refuses the
move from its expiry on, so nothing can be accepted meanwhile). A restarted node waits
SETTLE too: the ACKs of before its crash went to the dead process, and the answers to
the transfers it resends at once come first.

Echo with dead or silent nodes. Each wave has a budget: the operator's ``timeout`` at
the initiator; every message that may bring the wave to a node (an EXPLORE) carries the
time left, less a hop margin (:func:`hop_budget`), so a child's deadline comes before its
father's. At its deadline a node gives up on the neighbours it
has not heard from (``EchoWave.expire``) and echoes what it has, naming them as
``missing`` in its sample. The initiator therefore always answers by its deadline, and
the operator names the nodes absent from the result.

Restarts and the consistent cut. Echo samples add up (submitted = done + queued +
running + in flight) because hand-off messages carry the echo waves their sender has
sampled, and a receiver samples those first (Lai and Yang). A restarted node has forgotten
which waves it sampled, so its peers close every wave older than its restart that they
have not sampled yet (:attr:`NodeCore.closed_before`): such a wave ends incomplete rather
than inconsistent. A restarted node itself drops every wave older than its own epoch.

Epochs and readiness (:func:`node_epoch`, :func:`ready_at`). A wave's start is stamped
by its operator's clock, an epoch by the node's; the two may differ by up to
:data:`MAX_CLOCK_OFFSET`. A restarted node's epoch runs that far ahead of its clock, so
that it never joins a wave its previous incarnation took part in (a Finn decision would
be made twice); a fresh node's runs that far behind. Either way the driver says the node
is ready only once its clock is that far past the epoch, so a node called RUNNING joins
every wave begun from then on: a fresh node at once, a restarted one a second later.

What the node did, told by the node. Every sample carries ``last_finn`` (the wave that
enqueued work here as it decided — Finn's decision action, hence the name — that started
last, with when, how many tasks it enqueued and its sends) and ``last_round`` (the balancing round, by its start, in which tasks left or
reached this node: moves and tasks each way), bounded as daemon/core/messages.py's
``LAST_FINN`` and ``LAST_ROUND`` say. So every view of the cluster (``ctl top`` above
all) shows the last wave and round whoever started them (daemon/core/snapshot.py
``last_finn``, ``last_round``). Both are journaled (``Told``) in the step that changes
them, so a restarted node tells them as before its crash.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from math import isfinite
from typing import NamedTuple

from daemon.core import messages as m
from daemon.core.asking import Asker
from daemon.core.journal import JournalState, Told
from daemon.core.tasks import Task, TaskBoard, Transfer
from daemon.core.wave import Names, Work
from daemon.core.waves import WaveError, round_of, wave_started

HOUSEKEEPING = 0.5  # seconds between resends, take-backs and clean-ups
RESEND_EVERY = 0.5  # resend an unacknowledged TRANSFER
MOVE_DEADLINE = 5.0  # a destination silent this long: the donor takes the tasks back
STALLED = 1.0  # seconds between two steps (housekeeping comes every HOUSEKEEPING): the node did not run
SETTLE = 1.0  # ... and takes nothing back until it has run this long again (module text, "Time")
SEEN_MOVE_TTL = 600.0  # remember answered move ids this long past their expiry
WAVE_TTL = 60.0  # forget a wave's state this long after its last message (unless it waits for its deadline)
DONE_WAVE_MEMORY = 60.0  # remember finished waves (late duplicates, Lai-Yang tags)
MAX_WAVES = 1_024  # live wave records, of every kind together
MAX_DONE_WAVES = 3_000  # with MAX_WAVES, below the wire's MAX_WAVE_TAGS
MAX_REMEMBERED_MOVES = 100_000
RELINK_EVERY = 1.0  # seconds: a peer's RELINK reopens our link to it at most this often
MAX_SKEW = 3_600.0  # seconds: a time further from now than this is implausible
HOP_MARGIN = 0.05  # seconds: the least an EXPLORE's budget shrinks per hop (see hop_budget)
HOP_SHARE = 16  # ... or this fraction of it, where that is more
QUEUE_DETAIL_LIMIT = 256  # a detailed sample lists queued tasks up to this many (else runs only)
LISTING_BUDGET = 16 * 1024 * 1024  # bytes of listed tasks a whole echo result may carry
PAIR_BYTES = 128  # the most one listed [task id, cost] takes: a 64-character name, epoch, seq


def hop_budget(left: float) -> float:
    """The budget an EXPLORE gives its receiver when the sender has ``left`` seconds to
    its own deadline: less a margin for the receiver's ECHO to come back in — a 16th of
    what is left, at least HOP_MARGIN, at most an 8th. A node whose neighbour is silent
    waits until its own deadline and then echoes; its father must still be waiting, or
    the whole live subtree is lost from the result. Near the initiator, where the most is
    at stake, a loaded machine may leave a process unscheduled for tens of milliseconds:
    the margin grows with the time left; deep in a long chain it shrinks geometrically
    (an 8th per hop), so the budget never runs out. A budget already spent passes on."""
    return left - min(max(HOP_MARGIN, left / HOP_SHARE), max(left, 0.0) / 8)


def listing_limit(nodes: int) -> int:
    """How many queued tasks each node of a ``nodes``-node cluster lists in a detailed
    sample: QUEUE_DETAIL_LIMIT, less in a cluster so large that the initiator's result
    (every node's sample in one frame) would otherwise pass half of MAX_FRAME."""
    return max(1, min(QUEUE_DETAIL_LIMIT, LISTING_BUDGET // (PAIR_BYTES * max(1, nodes))))

MAX_CLOCK_OFFSET = 0.5  # seconds: the most the clocks of two hosts of a cluster may differ (node_epoch)

STATS = ("received", "garbage", "stale", "late", "refused", "wave_errors", "refused_transfers",
         "unroutable", "dropped", "internal", "unauthorized", "handshakes_failed", "keys_refused", "wave_faults")


def node_epoch(now: float, previous: int, restarted: bool, bound: float = MAX_CLOCK_OFFSET) -> int:
    """The epoch (ns) of an incarnation of a node starting at ``now`` (its clock): the
    start of the oldest wave it accepts (a node drops every wave that began before its
    epoch), always after ``previous`` (the epoch of its latest incarnation, 0 if none: a
    clock that stepped back must not give an older incarnation).

    A wave's start is stamped by the clock of the operator that began it, the epoch by
    the node's; ``bound`` is the most two hosts' clocks may differ (:data:`MAX_CLOCK_OFFSET`).

    - Restarted (its journal held an earlier incarnation): ``bound`` ahead of its clock.
      The node must never join a wave its previous incarnation took part in (it has
      forgotten what it did there: a Finn decision would be made twice, an echo sample
      taken twice). Every such wave began before the crash, by a clock at most ``bound``
      ahead of the node's, so before the epoch.
    - Fresh (nothing to forget): ``bound`` behind its clock, so that an operator whose
      clock is behind the node's finds it joinable from the start.

    Either way the node says it is ready (and is called RUNNING) only at :func:`ready_at`."""
    offset = bound if restarted else -bound
    return max(int((now + offset) * 1e9), previous + 1)


def ready_at(epoch: int, bound: float = MAX_CLOCK_OFFSET) -> float:
    """When (on its own clock, s) a node of ``epoch`` may say it is ready: once a wave
    begun from then on, by a clock at most ``bound`` behind the node's, is no older than
    its epoch, so that a node called RUNNING joins every new wave. A fresh node is ready
    at once; a restarted one 2 x ``bound`` after its start."""
    return epoch / 1e9 + bound


# --- effects -------------------------------------------------------------------------


class Send(NamedTuple):
    """Send ``msg`` to node ``dest``'s inbox (through this node's DEALER to it)."""

    dest: str
    msg: object


class Reply(NamedTuple):
    """Send ``msg`` to the operator whose routing id is ``to`` (through the operator socket, daemon/node.py)."""

    to: bytes
    msg: object


class SetBusy(NamedTuple):
    """Burn CPU on ``slots`` slots from now on."""

    slots: int


class Reconnect(NamedTuple):
    """The link to ``peer`` seems to lose this node's messages: a neighbour said nothing
    within a wave's deadline (the node also sends it a RELINK, so that it reopens its
    link to this node), the peer sent a RELINK, or a peer repeats an ACK that this node
    has answered already. The driver reopens the link, so that a connection that lost its peer
    without noticing (half-open TCP, or a routing id taken over by another client at
    the peer's ROUTER) recovers."""

    peer: str


class ShowTrace(NamedTuple):
    """Answer operator ``to`` with this node's recorded steps concerning ``wave_ids``
    (all, if empty), at most ``max_steps`` of them. The driver holds the recording (the
    steps' times and durations are its own: daemon/trace/recorder.py); the core only
    checks who asks and what."""

    to: bytes
    wave_ids: tuple
    max_steps: int
    id: int = 0  # the trace.get's id, which the reply carries


class Persist(NamedTuple):
    """Write these journal records (daemon/core/journal.py) durably, in one transaction,
    before executing the effects that follow."""

    records: list


# What handle(), tick() and enqueue() return: the effects of one step, in order.
Effect = Send | Reply | SetBusy | Reconnect | ShowTrace | Persist


@dataclass(frozen=True)
class NodeConfig:
    """What a node knows of the cluster: itself, its links, every node's name."""

    name: str
    cpus: int
    parents: tuple[str, ...]
    children: tuple[str, ...]
    nodes: frozenset[str]
    pid: int = 0

    @classmethod
    def of(cls, topology, name: str, pid: int = 0) -> "NodeConfig":
        return cls(name, topology.node(name).cpus, tuple(topology.parents(name)),
                   tuple(topology.children(name)), frozenset(topology.names), pid)


class Refused(Exception):
    """A message this node will not act on; ``counter`` names the statistic it counts in,
    ``code`` the error code an operator is told."""

    def __init__(self, counter: str, code: str, text: str):
        super().__init__(text)
        self.counter = counter
        self.code = code


class _Wave:
    """One wave instance at this node: the kind's object (``wave``) and what the node
    keeps around it — its id, parameters, the operator its decisions go to, its budget's
    end and its deadline, when it was last heard of. It is also the instance's
    :class:`daemon.core.wave.WaveNode`: the kind calls these methods back."""

    __slots__ = ("core", "kind", "wave", "id", "params", "report", "end", "deadline", "seen", "decided", "sent",
                 "enqueued", "provisional", "allowed", "types", "me", "neighbours")

    def __init__(self, core: "NodeCore", kind: type, wave_id: str, params: dict, report: bytes | None,
                 end: float | None, now: float, provisional: bool = False):
        self.core = core
        self.kind = kind
        self.wave = None  # the kind's instance, made once this record exists
        self.id = wave_id
        self.params = params
        self.report = report  # the operator's routing id; None: nobody to report to
        self.end = end  # when the wave's budget here runs out (None: it has none)
        self.deadline: float | None = None  # when to call the instance's expire
        self.seen = now
        self.decided = False
        self.sent = 0
        self.enqueued = -1  # tasks enqueued by the instance (-1: none yet)
        self.provisional = provisional  # made by a Lai-Yang tag: params and budget still to come
        self.allowed = core._neighbour_set if kind.hears_from == "neighbours" else core._child_set
        self.types = core._kind_types[kind]
        self.me = core.name  # WaveNode's, as plain attributes: every kind reads them as it is made
        self.neighbours = core.neighbours

    # --- WaveNode ----------------------------------------------------------------------

    @property
    def parents(self) -> tuple:
        return self.core.config.parents

    @property
    def children(self) -> tuple:
        return self.core.config.children

    @property
    def nodes(self) -> frozenset:
        return self.core.config.nodes

    @property
    def now(self) -> float:
        return self.core._now

    def send(self, dest: str, msg) -> None:
        if dest not in self.allowed:
            raise ValueError(f"{self.kind.name} wave {self.id}: {self.core.name} cannot send to {dest!r}, "
                             f"not a {'neighbour' if self.kind.hears_from == 'neighbours' else 'child'} of it")
        joins = self.types.get(type(msg))
        if joins is None:
            raise ValueError(f"{self.kind.name} wave {self.id}: {type(msg).__name__} is not one of its message types")
        self.sent += 1
        core = self.core
        if joins:  # it may bring the wave to its receiver: with what the receiver needs to join
            end = self.end
            core._send(dest, _new(_WaveMessage, (self.id, msg, self.params,
                                                 None if end is None else hop_budget(end - core._now), self.report or b"")))
        else:  # its receiver has the wave already (daemon/wire.py refuses more)
            core._send(dest, _new(_WaveMessage, (self.id, msg, _NO_PARAMS, None, b"")))

    def decide(self, result=None) -> None:
        if not self.decided:
            self.decided = True
            self.core._decided(self, result)

    def sample(self, detail: bool = False) -> dict:
        core = self.core
        return core._sample(detail, core._now)

    def enqueue(self, tasks: int, cost: float) -> list:
        if type(tasks) is not int or not 0 <= tasks <= m.MAX_TASKS:
            raise ValueError(f"{self.kind.name} wave {self.id}: cannot enqueue {tasks!r} tasks (0..{m.MAX_TASKS})")
        if type(cost) not in (int, float) or not isfinite(cost) or not 0 < cost <= m.MAX_COST:
            raise ValueError(f"{self.kind.name} wave {self.id}: a task cost must be in (0, {m.MAX_COST:g}], got {cost!r}")
        core = self.core
        ids = core._enqueue(tasks, float(cost), f"{self.kind.name} {self.id}", core._now)
        self.enqueued = max(self.enqueued, 0) + len(ids)
        return ids

    def set_deadline(self, at: float | None) -> None:
        self.deadline = at
        if at is None:
            self.core._deadlines.pop(self.id, None)
        else:
            self.core._deadlines[self.id] = self

    def budget(self) -> float | None:
        return None if self.end is None else self.end - self.core._now

    def work(self) -> Work:
        return self.core._work()


class NodeCore:
    """Node ``config.name``, incarnation ``epoch`` (its start time in ns), at ``now``.

    ``recovered``: the journal's state after a crash (None: a fresh node). ``journaled``:
    emit :class:`Persist` effects (the simulator's balance study turns them off).
    ``detail_limit``: a detailed sample lists the queued tasks only up to this many (None:
    always; default: :func:`listing_limit` of the cluster's size; daemon/core/tasks.py
    ``sample``)."""

    def __init__(self, config: NodeConfig, epoch: int, now: float, recovered: JournalState | None = None,
                 journaled: bool = True, detail_limit: int | None | str = "cluster", kinds: dict | None = None):
        self.config = config
        self.name = config.name
        self.epoch = epoch
        self.neighbours = tuple(dict.fromkeys(config.parents + config.children))
        self._neighbour_set = frozenset(self.neighbours)
        self._parent_set = frozenset(config.parents)
        self._child_set = frozenset(config.children)
        if kinds is None:  # the installed kinds (daemon/plugins.py); imported here: the core reads no files
            from daemon.plugins import wave_kinds
            kinds = wave_kinds()
        self.kinds = kinds
        tables = _kind_tables(tuple(kinds.items()))
        self._by_tag, self._bodies, self._kind_types = tables
        self._node_of = routing_ids(config.nodes)  # this node's own id too: see handle()
        if recovered is None:
            self.board = TaskBoard(config.name, config.cpus, memory=SEEN_MOVE_TTL, journaled=journaled)
        else:
            self.board = TaskBoard.restore(config.name, config.cpus, recovered, now, memory=SEEN_MOVE_TTL)
        self.waves: dict[str, _Wave] = {}  # live wave instances of every kind, by wave id
        self.done_waves: OrderedDict[str, float] = OrderedDict()  # finished or closed waves -> when
        self._done_tags: OrderedDict[str, float] = OrderedDict()  # ... of snapshot kinds: Lai-Yang tags
        self._deadlines: dict[str, _Wave] = {}  # the instances with a deadline set
        self._watchers: dict[str, _Wave] = {}  # the instances of kinds that watch the node's work
        self._handoffs = [0, 0]  # TRANSFERs sent (resends too) and received (copies too): Work
        self._in_work = False  # calling the watchers (their own enqueue must not call them again)
        self.sender_epochs: dict[str, int] = {}  # node peer -> epoch of its latest message
        self._relinked: dict[str, float] = {}  # node peer -> when its RELINK last reopened our link
        self.closed_before = 0  # ns: waves of snapshot kinds started earlier are not joined any more
        self.stats = dict.fromkeys(STATS, 0)
        self.last_internal = ""  # the latest contained exception, for the log
        self.cpu_percent: float | None = None  # measured by the driver (psutil)
        # [who refused, whose key] per link whose handshake failed, as the driver read its
        # socket monitors (daemon/node.py); at most messages.MAX_REFUSALS
        self.refused: list = []
        self.detail_limit = listing_limit(len(config.nodes)) if detail_limit == "cluster" else detail_limit
        self.task_seq = 0
        told = recovered.told if recovered is not None else {}
        # messages.LAST_FINN: the latest-started wave that enqueued work here as it decided
        # (Finn's action, hence the name); messages.LAST_ROUND:
        # the latest-started round with a move here (journaled as Told: a restart keeps them)
        self.last_finn: list | None = _fact(told.get("last_finn"), m.LAST_FINN)
        self.last_round: list | None = _fact(told.get("last_round"), m.LAST_ROUND)
        self._now = now
        self._skew = 0.0
        self._next_housekeeping = now
        self._settled_at = now + SETTLE  # no take-back before (see STALLED): a restarted
        # node did not run either, and the answers to the transfers it resends come first
        self._busy = 0
        self._out: list[Effect] = []
        self.asker = Asker()  # asks the watching balancer for a round (daemon/core/asking.py)
        self._grew = False  # work was enqueued here since the last _advance

    # --- the driver's interface ------------------------------------------------------

    def handle(self, sender: bytes, epoch: int, msg, now: float) -> list[Effect]:
        """One message from routing id ``sender`` with the sender's ``epoch``."""
        now = self._clock(now)
        self.stats["received"] += 1
        peer = self._node_of.get(sender)
        if peer == self.name:  # its own name is not a peer: an operator's id, like any other
            peer = None
        kind = type(msg)
        try:
            if peer is None:
                if kind not in m.OPERATOR_REQUESTS:
                    raise Refused("refused", "not-a-node", f"{self.name}: only nodes of the cluster send {self._type_name(msg)!r}")
            else:
                if kind not in m.NODE_MESSAGES:
                    raise Refused("refused", "not-an-operator", f"{self.name}: node {peer} sent an operator request")
                self._check_epoch(peer, epoch, now)
            if kind in m.WAVE_MESSAGES and msg.wave not in self.waves:  # a known wave was checked
                self._check_wave_age(msg.wave, now)
            self._HANDLERS[kind](self, peer if peer is not None else sender, msg, now)
        except Refused as exc:
            self.stats[exc.counter] += 1
            if peer is None:
                self._reply(sender, m.Error(exc.code, str(exc), msg.id if kind in m.OPERATOR_REQUESTS else None))
        except WaveError as exc:
            self.stats["wave_errors"] += 1
            if peer is None:
                self._reply(sender, m.Error("rejected", str(exc), msg.id if kind in m.OPERATOR_REQUESTS else None))
        except Exception as exc:  # never fatal: count it, say it, keep serving
            self.stats["internal"] += 1
            self.last_internal = f"{type(exc).__name__}: {exc}"[:300]
            if peer is None:
                self._reply(sender, m.Error("internal", f"{self.name}: {self.last_internal}",
                                            msg.id if kind in m.OPERATOR_REQUESTS else None))
        due = self.board.next_deadline()
        if (due is not None and due <= now) or self._grew:  # tasks to start or collect; work to ask about
            self._advance(now)
        return self._drain()

    def tick(self, now: float) -> list[Effect]:
        """Time passed: tasks start and end, transfers are resent or taken back, waves
        reach their deadlines, old state is forgotten."""
        now = self._clock(now)
        self._advance(now)
        if self._deadlines:
            for rec in [r for r in self._deadlines.values() if r.deadline <= now]:
                if self.waves.get(rec.id) is not rec:
                    continue
                rec.set_deadline(None)
                try:
                    self._event(rec, now, False, rec.wave.expire)
                except WaveError:
                    self.stats["wave_errors"] += 1
                    continue
                for peer in rec.wave.missing or ():
                    # reopen our link to it, and ask it to reopen its link to us: a child
                    # whose routing id was taken over here echoes into a dead connection
                    # and, never waiting on its father, would not reopen it by itself
                    self._out.append(Reconnect(peer))
                    self._send(peer, m.Relink())
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + HOUSEKEEPING
            self._housekeeping(now)
        self._advance(now)
        return self._drain()

    def next_deadline(self) -> float:
        """When :meth:`tick` has work next, on the driver's clock."""
        deadline = self._next_housekeeping
        board = self.board.next_deadline()
        if board is not None and board < deadline:
            deadline = board
        for rec in self._deadlines.values():
            if rec.deadline < deadline:
                deadline = rec.deadline
        ask = self.asker.due()
        if ask is not None and ask < deadline:
            deadline = ask
        return deadline - self._skew

    def enqueue(self, n: int, cost: float, label: str, now: float) -> list[Effect]:
        """New work at this node (the topology's initial tasks); returns the effects."""
        now = self._clock(now)
        self._enqueue(n, cost, label, now)
        self._advance(now)
        return self._drain()

    def _type_name(self, msg) -> str:
        """A message's wire name (a wave's by its kind's message type)."""
        kind = type(msg)
        if kind is m.WaveMessage:
            info = self._bodies.get(type(msg.body))
            if info is not None:
                return info[3]
        return m.KIND.get(kind, kind.__name__)

    def count(self, stat: str) -> None:
        """The driver's own counters (garbage frames, unroutable replies)."""
        self.stats[stat] += 1

    # --- time, peers, effects --------------------------------------------------------

    def _clock(self, now: float) -> float:
        local = now + self._skew
        if local < self._now:  # the clock stepped back: hold time where it was
            self._skew += self._now - local
            local = self._now
        elif local - self._now > STALLED:  # the node did not run: read before taking back
            self._settled_at = local + SETTLE
        self._now = local
        return local

    def _check_epoch(self, peer: str, epoch: int, now: float) -> None:
        """A node's epoch is its start time: one from the far future is forged.

        There is deliberately no "stale incarnation" rule (drop what comes from an
        epoch older than the newest seen): a message of a sender's earlier incarnation
        is harmless here — wave messages of a wave older than the receiver are dropped
        by the wave's age, and the hand-off is idempotent and journaled — while a
        remembered newest epoch could be raised by one forged frame and then drop the
        real node's messages for good."""
        if not 0 < epoch <= (now + MAX_SKEW) * 1e9:
            raise Refused("refused", "bad-epoch", f"{self.name}: implausible epoch {epoch} from {peer}")
        self.sender_epochs[peer] = epoch

    def _check_wave_age(self, wave: str, now: float) -> None:
        started = wave_started(wave)
        if started is None:
            raise Refused("wave_errors", "bad-wave", f"{self.name}: {wave!r} is not a wave id")
        if started < self.epoch:  # a wave that began before this node did
            raise Refused("stale", "stale", f"{self.name}: wave {wave} began before this node started")
        if started > (now + MAX_SKEW) * 1e9:
            raise Refused("wave_errors", "bad-wave", f"{self.name}: wave {wave} begins in the future")

    def _send(self, dest: str, msg) -> None:
        self._persist()
        self._out.append(Send(dest, msg))

    def _reply(self, to: bytes, msg) -> None:
        self._persist()
        self._out.append(Reply(to, msg))

    def _persist(self) -> None:
        records = self.board.take_journal()
        if records:
            self._out.append(Persist(records))

    def _advance(self, now: float) -> None:
        started, ended = self.board.advance(now)
        if (started or ended) and self._watchers:
            self._work_changed(now)
        busy = self.board.busy_slots()
        if busy != self._busy:
            self._busy = busy
            self._out.append(SetBusy(busy))
        if self.asker.watcher is not None:
            queued = self.board.queue_length
            if self._grew and queued:
                self._ask(self.asker.want("queued", now))
            elif ended and not queued and busy < self.config.cpus:
                self._ask(self.asker.want("idle", now))
            else:
                self._ask(self.asker.take(now))
        self._grew = False

    def _ask(self, reason: str | None) -> None:
        """Send the watcher ``balance.wanted`` if the debounce let ``reason`` go."""
        if reason is not None and self.asker.watcher is not None:
            self._reply(self.asker.watcher, m.BalanceWanted(self.name, reason, self.board.queue_length,
                                                            self.config.cpus - self.board.busy_slots()))

    def _drain(self) -> list[Effect]:
        self._persist()
        out, self._out = self._out, []
        return out

    def _housekeeping(self, now: float) -> None:
        for tr in self.board.transfers_to_resend(now, RESEND_EVERY):
            self._send_transfer(tr)
        for move_id, donor in self.board.unconfirmed():  # until the FORGET comes
            self._send(donor, m.Ack(move_id, True, self._tags()))
        if now >= self._settled_at and self.board.take_back_expired(now) and self._watchers:
            self._work_changed(now)
        # a quiet wave is forgotten, unless its instance waits for a deadline it set: it
        # is alive (termination detection's initiator waits for its token for as long as
        # the work runs, hearing nothing meanwhile)
        for wave in [w for w, rec in self.waves.items() if now - rec.seen > WAVE_TTL and rec.deadline is None]:
            self._forget(wave)
        for done in (self.done_waves, self._done_tags):
            while done and (len(done) > MAX_DONE_WAVES or now - next(iter(done.values())) > DONE_WAVE_MEMORY):
                done.popitem(last=False)

    # --- samples ---------------------------------------------------------------------

    def _sample(self, detail: bool, now: float) -> dict:
        """This node's sample (what a wave's ``node.sample`` gives: echo's entry; daemon/core/tasks.py sample)."""
        state = self.board.sample(now, detail, self.detail_limit)
        state.update(cpus=self.config.cpus, pid=self.config.pid, cpu_percent=self.cpu_percent, sent=0)
        if self.last_finn is not None:
            state["last_finn"] = list(self.last_finn)
        if self.last_round is not None:
            state["last_round"] = list(self.last_round)
        if self.refused:
            state["refused"] = [list(pair) for pair in self.refused]
        return state

    # --- waves of any kind ---------------------------------------------------------

    def _new_wave(self, kind: type, wave: str, params: dict, report: bytes | None, end: float | None, now: float,
                  provisional: bool = False) -> _Wave:
        if len(self.waves) >= MAX_WAVES:
            raise Refused("refused", "busy", f"{self.name}: {MAX_WAVES} waves in progress; try again later")
        rec = _Wave(self, kind, wave, params, report, end, now, provisional)
        try:
            rec.wave = kind(rec, wave, params)
        except Exception as exc:  # a kind that cannot even be made here
            self._fault(rec, exc, len(self._out), now)
            return None
        self.waves[wave] = rec
        if kind.watches_work:
            self._watchers[wave] = rec
        return rec

    def _event(self, rec: _Wave, now: float, created: bool, event, *args) -> None:
        """One event of an instance. A WaveError changes nothing (an instance made for
        it is dropped again) and goes on to the caller; anything else the kind raises is
        contained (:meth:`_fault`); a finished instance is closed."""
        mark = len(self._out)
        try:
            event(*args)
        except WaveError:
            if created:
                self._forget(rec.id)
            raise
        except Exception as exc:
            self._fault(rec, exc, mark, now)
            return
        if rec.wave.finished:
            self._close(rec.id, now)

    def _fault(self, rec: _Wave, exc: Exception, mark: int, now: float) -> None:
        """A kind raised something other than a WaveError: like a hostile frame, counted
        and said (to the operator the wave reports to, and in ``last_internal`` for the
        log), never fatal. The instance is dropped and its id remembered as done; the
        messages the failed event would have sent are not (its journal records stay:
        tasks it enqueued are real)."""
        self.stats["wave_faults"] += 1
        self.last_internal = f"{rec.kind.name} wave {rec.id}: {type(exc).__name__}: {exc}"[:300]
        self._out[mark:] = [e for e in self._out[mark:] if type(e) is not Send]
        self._forget(rec.id)
        self.done_waves[rec.id] = now
        if rec.report is not None:
            self._reply(rec.report, m.Error("wave-fault", f"{self.name}: {self.last_internal} (the wave is dropped here)"))

    def _forget(self, wave: str) -> None:
        self.waves.pop(wave, None)
        self._deadlines.pop(wave, None)
        self._watchers.pop(wave, None)

    def _close(self, wave: str, now: float, snapshot: bool | None = None) -> None:
        rec = self.waves.pop(wave, None)
        if rec is not None:
            snapshot = rec.kind.snapshot
            if rec.deadline is not None:
                self._deadlines.pop(wave, None)
            if self._watchers:
                self._watchers.pop(wave, None)
        done = self.done_waves
        done.pop(wave, None)
        done[wave] = now  # the latest last
        if snapshot:
            done = self._done_tags
            done.pop(wave, None)
            done[wave] = now

    def _params(self, kind: type, params: dict) -> dict:
        if len(params) == len(kind.params):
            return params
        full = {**kind.defaults, **params}
        if set(full) != set(kind.params):
            raise Refused("wave_errors", "bad-params", f"{self.name}: {kind.name} takes the parameters "
                          f"{sorted(kind.params) or 'none'}, got {sorted(params)}")
        return full

    def _on_wave_start(self, sender: bytes, msg: m.WaveStart, now: float) -> None:
        kind = self.kinds.get(msg.kind)
        if kind is None:
            raise Refused("wave_errors", "unknown-kind", f"{self.name}: no wave kind {msg.kind!r} is installed here")
        wave = msg.wave
        tag = kind.tag or kind.name
        if wave.partition("-")[0] != tag:
            raise Refused("wave_errors", "bad-wave", f"{self.name}: {wave!r} is not a {kind.name} wave id "
                          f"(its first part must be {tag!r})")
        rec = self.waves.get(wave)
        if wave in self.done_waves or (rec is not None and kind.initiators_allowed == "one"):
            raise Refused("wave_errors", "duplicate", f"wave {wave} already reached {self.name}")
        created = rec is None
        if created:
            if kind.snapshot and (wave_started(wave) or 0) < self.closed_before:
                self._close(wave, now, True)
                raise Refused("wave_errors", "closed", f"{self.name}: wave {wave} is older than a peer's restart")
            rec = self._new_wave(kind, wave, self._params(kind, msg.params), sender, now + msg.timeout, now)
            if rec is None:
                return
        else:
            rec.seen = now
            if rec.provisional:
                rec.params, rec.end, rec.provisional = self._params(kind, msg.params), now + msg.timeout, False
                rec.wave.params = rec.params
            if rec.report is None:
                rec.report = sender
        self._event(rec, now, created, rec.wave.start)

    def _on_wave(self, peer: str, msg: m.WaveMessage, now: float) -> None:
        body = msg.body
        info = self._bodies.get(type(body))
        if info is None:
            raise WaveError(f"{self.name}: {type(body).__name__} of wave {msg.wave} from {peer} is no installed kind's message")
        kind, joins, names, _, parents_only = info
        if peer not in (self._parent_set if parents_only else self._neighbour_set):
            raise WaveError(f"{self.name}: {kind.name} message of wave {msg.wave} from {peer}, which is not "
                            + ("an in-neighbour" if parents_only else "a neighbour"))
        wave = msg.wave
        if body[0] != wave:
            raise WaveError(f"{self.name}: a message of wave {body[0]} from {peer} framed as wave {wave}")
        if names:
            nodes = self.config.nodes
            for k in names:
                if not all(type(x) is str and x in nodes for x in body[k]):
                    raise WaveError(f"{self.name}: a {kind.name} message of wave {wave} from {peer} names nodes "
                                    "outside the cluster")
        rec = self.waves.get(wave)
        created = rec is None
        if created:
            tag = kind.tag or kind.name
            if wave.partition("-")[0] != tag:
                raise WaveError(f"{self.name}: {wave!r} from {peer} is not a {kind.name} wave id (its first part "
                                f"must be {tag!r})")
            if not joins or wave in self.done_waves:
                self.stats["late"] += 1  # finished here (a late duplicate), or never joined
                return
            if kind.snapshot and (wave_started(wave) or 0) < self.closed_before:
                self._close(wave, now, True)  # older than a peer's restart (module text)
                self.stats["late"] += 1
                return
            budget = msg.budget
            rec = self._new_wave(kind, wave, self._params(kind, msg.params), msg.report or None,
                                 None if budget is None else now + max(0.0, budget), now)
            if rec is None:
                return
        else:
            if rec.kind is not kind:
                raise WaveError(f"{self.name}: a {kind.name} message of wave {wave} from {peer}, a {rec.kind.name} wave")
            rec.seen = now
            if rec.provisional and joins:  # made by a Lai-Yang tag: this message makes the node join
                budget = msg.budget
                rec.params = rec.wave.params = self._params(kind, msg.params)
                rec.end = None if budget is None else now + max(0.0, budget)
                rec.report = msg.report or None
                rec.provisional = False
        mark = len(self._out)  # _event, inline: the path every wave message takes
        inst = rec.wave
        try:
            inst.receive(peer, body)
        except WaveError:
            if created:
                self._forget(wave)
            raise
        except Exception as exc:
            self._fault(rec, exc, mark, now)
            return
        if inst.finished:
            self._close(wave, now)

    def _decided(self, rec: _Wave, result) -> None:
        """An instance decided here: report it to the wave's operator. A wave that enqueued
        work as it decided (Finn's action) is told in the samples (``last_finn``)."""
        now = self._now
        wave = rec.id
        if rec.enqueued >= 0 and len(wave) <= m.MAX_FACT_ID and (
                self.last_finn is None or (wave_started(wave) or 0) >= (wave_started(self.last_finn[0]) or 0)):
            self.last_finn = [wave, now, rec.enqueued, min(rec.sent, m.MAX_COUNT)]
            self._tell("last_finn", self.last_finn)
        if rec.report is not None:
            self._reply(rec.report, m.WaveDecided(wave, rec.kind.name, self.name, result))

    def _work(self) -> Work:
        board = self.board
        idle = not board.busy_slots() and not board.queue_length and not board.leaving
        return Work(idle, self._handoffs[0], self._handoffs[1])

    def _work_changed(self, now: float) -> None:
        """The node's work changed: tell the instances of kinds that watch it."""
        if self._in_work:
            return
        self._in_work = True
        try:
            for rec in list(self._watchers.values()):
                if self.waves.get(rec.id) is rec:
                    try:
                        self._event(rec, now, False, rec.wave.work)
                    except WaveError:
                        self.stats["wave_errors"] += 1
        finally:
            self._in_work = False

    def _tags(self) -> list:
        """The waves of snapshot kinds this node has sampled: the Lai–Yang tag of its
        hand-off messages."""
        tags = [wave for wave, rec in self.waves.items() if rec.kind.snapshot and rec.wave.sampled]
        tags.extend(self._done_tags)
        return tags[-m.MAX_WAVE_TAGS:]

    def _presample(self, peer: str, epoch: int, waves: list, now: float) -> None:
        """Lai–Yang: sample every wave the sender had sampled before its message changes
        what a sample covers; and close the waves older than the sender's incarnation."""
        restart = min(epoch, int(now * 1e9))  # never ahead of now: a forged epoch closes
        if restart > self.closed_before:      # at most the waves already under way
            self.closed_before = restart
        for wave in waves:
            if type(wave) is not str or len(wave) > m.MAX_TEXT:
                raise Refused("garbage", "bad-tag", f"{self.name}: a wave tag from {peer} is not a wave id")
            started = wave_started(wave)
            if started is None or started < self.epoch or wave in self.done_waves:
                continue
            rec = self.waves.get(wave)
            created = rec is None
            if created:
                kind = self._by_tag.get(wave.partition("-")[0])
                if kind is None or not kind.snapshot:
                    continue
                if started < self.closed_before:
                    self._close(wave, now, True)  # older than a peer's restart (module text)
                    continue
                try:
                    rec = self._new_wave(kind, wave, {}, None, None, now, provisional=True)
                except Refused:  # too many waves: close this one instead (it ends incomplete)
                    self._close(wave, now, True)
                    continue
                if rec is None:
                    continue
            elif not rec.kind.snapshot:
                continue
            else:
                rec.seen = now
            try:
                self._event(rec, now, created, rec.wave.presample)
            except WaveError:
                self.stats["wave_errors"] += 1

    # --- tasks -----------------------------------------------------------------------

    def _enqueue(self, n: int, cost: float, label: str, now: float) -> list:
        tasks = []
        incarnation = f"{self.epoch % 1_000_000_007:x}"
        for _ in range(n):
            self.task_seq += 1
            tasks.append(Task(f"{self.name}:{incarnation}:{self.task_seq}", label, cost))
        self.board.submit(tasks, now)
        self._grew = True
        if self._watchers:
            self._work_changed(now)
        return [t.id for t in tasks]

    def _on_ping(self, sender: bytes, msg: m.Ping, now: float) -> None:
        self._reply(sender, m.Pong(msg.id, self.name, self.config.pid, dict(self.stats),
                                   [list(pair) for pair in self.refused]))

    def _on_submit(self, sender: bytes, msg: m.Submit, now: float) -> None:
        if msg.tasks < 1:
            raise Refused("refused", "bad-submit", f"{self.name}: tasks must be 1..{m.MAX_TASKS}, got {msg.tasks}")
        ids = self._enqueue(msg.tasks, msg.cost, msg.label or "submitted", now)
        self._reply(sender, m.SubmitOk(ids, msg.id))

    def _on_move(self, sender: bytes, msg: m.Move, now: float) -> None:
        if msg.dest not in self.config.nodes or msg.dest == self.name:
            raise Refused("refused", "bad-move", f"{self.name}: cannot move tasks to {msg.dest!r}")
        if msg.count > 0:  # a bulk plan says how many; this node gives its tail
            tr = self.board.move_out_tail(msg.move_id, msg.dest, msg.count, now, now + MOVE_DEADLINE)
        else:
            ids = [t for t in msg.tasks if type(t) is str]
            tr = self.board.move_out(msg.move_id, msg.dest, ids, now, now + MOVE_DEADLINE)
        if tr is not None:
            self._took_part(msg.move_id, now, out=len(tr.tasks))  # journaled with the Leave
            self._send_transfer(tr)
        moved = tr.tasks if tr else ()
        self._reply(sender, m.MoveOk(msg.move_id, [t.id for t in moved] if msg.count == 0 else [], len(moved), msg.id))

    def _on_balance_watch(self, sender: bytes, msg: m.BalanceWatch, now: float) -> None:
        self.asker.watch(sender if msg.on else None)  # one watcher: the latest

    def _on_trace_get(self, sender: bytes, msg: m.TraceGet, now: float) -> None:
        if not all(type(w) is str and len(w) <= m.MAX_TEXT for w in msg.wave_ids):
            raise Refused("garbage", "bad-trace", f"{self.name}: trace.get: each of wave_ids must be a wave id "
                          f"of at most {m.MAX_TEXT} characters")
        self._persist()
        self._out.append(ShowTrace(sender, tuple(msg.wave_ids), msg.max_steps, msg.id))

    def _took_part(self, move_id: str, now: float, out: int = 0, into: int = 0) -> None:
        """Count a move in :attr:`last_round` (module text): a move of a later-started
        round starts the count afresh; one of an earlier round changes nothing."""
        rnd = round_of(move_id)
        last = self.last_round
        if len(rnd) > m.MAX_FACT_ID:
            return  # bounds the sample (messages.MAX_FACT_ID); no ctl makes such ids
        if last is not None and last[0] != rnd and (wave_started(rnd) or 0) < (wave_started(last[0]) or 0):
            return
        if last is None or last[0] != rnd:
            last = self.last_round = [rnd, now, 0, 0, 0, 0]
        last[1] = now
        last[2:] = [min(c + d, m.MAX_COUNT) for c, d in zip(last[2:], (out > 0, out, into > 0, into))]
        self._tell("last_round", last)

    def _tell(self, key: str, fact: list) -> None:
        """Journal a fact the samples tell (``Told``), in this step's transaction."""
        if self.board.journal is not None:
            self.board.journal.append(Told(key, tuple(fact)))

    def _send_transfer(self, tr: Transfer) -> None:
        tasks = [[t.id, t.label, t.cost] for t in tr.tasks]
        self._send(tr.dest, m.Transfer(tr.move_id, tasks, tr.expires, self._tags()))
        self._handoffs[0] += 1
        if self._watchers:
            self._work_changed(self._now)

    def _on_transfer(self, peer: str, msg: m.Transfer, now: float) -> None:
        tasks = _tasks_of(msg.tasks)
        if tasks is None:
            raise Refused("garbage", "bad-transfer", f"{self.name}: transfer {msg.move_id} from {peer}: tasks must be "
                          f"distinct [id, label, cost] with cost in (0, {m.MAX_COST:g}]")
        self._presample(peer, self.sender_epochs.get(peer, 0), msg.waves, now)
        plausible = abs(msg.expires - now) <= MAX_SKEW
        if not plausible or (self.board.remembered >= MAX_REMEMBERED_MOVES and not self.board.answered(msg.move_id)):
            # refused without remembering it: a copy can only be refused again, or
            # accepted while the donor still waits for it (daemon/core/tasks.py)
            self.stats["refused_transfers"] += 1
            self._send(peer, m.Ack(msg.move_id, False, self._tags()))
            return
        new = not self.board.answered(msg.move_id)
        self._handoffs[1] += 1
        accepted = self.board.on_transfer(Transfer(msg.move_id, peer, self.name, tasks, float(msg.expires)), now)
        if self._watchers:
            self._work_changed(now)
        if not accepted:
            self.stats["refused_transfers"] += 1
        elif new:
            self._took_part(msg.move_id, now, into=len(tasks))
        self._advance(now)
        self._send(peer, m.Ack(msg.move_id, accepted, self._tags()))

    def _on_ack(self, peer: str, msg: m.Ack, now: float) -> None:
        self._presample(peer, self.sender_epochs.get(peer, 0), msg.waves, now)
        if msg.accepted:
            # FORGET answers every accepted ACK, a repeated one too: the destination
            # repeats its ACK until a FORGET arrives (a lost FORGET is not resent); a late
            # ACK of a move taken back reclaims the tasks still queued here (on_ack)
            if not self.board.on_ack(msg.move_id, peer, now):
                self._out.append(Reconnect(peer))  # our FORGET did not arrive
            self._send(peer, m.Forget(msg.move_id, self._tags()))
            if self._watchers:
                self._work_changed(now)
        # a refusal: the tasks stay leaving until the deadline takes them back

    def _on_forget(self, peer: str, msg: m.Forget, now: float) -> None:
        self._presample(peer, self.sender_epochs.get(peer, 0), msg.waves, now)
        self.board.on_forget(msg.move_id, peer)

    def _on_relink(self, peer: str, msg: m.Relink, now: float) -> None:
        # at most once per RELINK_EVERY per peer: forged RELINKs cannot keep a link closing
        if now - self._relinked.get(peer, -RELINK_EVERY) >= RELINK_EVERY:
            self._relinked[peer] = now
            self._out.append(Reconnect(peer))

    _HANDLERS = {
        m.Ping: _on_ping,
        m.WaveStart: _on_wave_start,
        m.WaveMessage: _on_wave,
        m.Submit: _on_submit,
        m.Move: _on_move,
        m.Transfer: _on_transfer,
        m.Ack: _on_ack,
        m.Forget: _on_forget,
        m.Relink: _on_relink,
        m.TraceGet: _on_trace_get,
        m.BalanceWatch: _on_balance_watch,
    }


def _fact(value, fields: tuple) -> list | None:
    """A fact recovered from the journal, if it is well formed (messages.fact_ok)."""
    value = list(value) if isinstance(value, (list, tuple)) else None
    return value if m.fact_ok(value, fields) else None


_WaveMessage = m.WaveMessage
_new = tuple.__new__
_NO_PARAMS: dict = {}  # what a message that cannot bring its wave to a node carries (never changed)


@lru_cache(maxsize=16)
def _kind_tables(kinds: tuple) -> tuple:
    """For the kinds ``((name, class), ...)``: tag -> kind; message class -> (kind,
    whether it may bring the wave to a node, the indices of its Names fields, which the
    node checks against the cluster, its wire name, whether the kind hears from parents
    only); kind -> {its message classes: whether each may bring the wave to a node}.
    Shared by the cores of one process."""
    by_tag, bodies, types = {}, {}, {}
    for _, kind in kinds:
        by_tag[kind.tag or kind.name] = kind
        types[kind] = {mt.cls: mt.joins for mt in kind.messages}
        for mt in kind.messages:
            names = tuple(k + 1 for k, b in enumerate(mt.fields.values()) if type(b) is Names)
            bodies[mt.cls] = (kind, mt.joins, names, mt.name, kind.hears_from == "parents")
    return by_tag, bodies, types


@lru_cache(maxsize=16)
def routing_ids(nodes: frozenset[str]) -> dict[bytes, str]:
    """Routing id -> name of every node of a cluster. Shared by the cores of one process
    (the simulator runs a thousand: one table each would hold a million entries)."""
    return {n.encode(): n for n in nodes}


def _tasks_of(items: list) -> tuple[Task, ...] | None:
    """The tasks of a TRANSFER, or None unless every item is a distinct
    [id, label, cost] with short texts and a finite cost in range."""
    tasks = []
    ids = set()
    for item in items:
        if type(item) is not list or len(item) != 3:
            return None
        task_id, label, cost = item
        if type(task_id) is not str or type(label) is not str or len(task_id) > m.MAX_TEXT or len(label) > m.MAX_TEXT:
            return None
        if type(cost) not in (int, float) or not isfinite(cost) or not 0 < cost <= m.MAX_COST or task_id in ids:
            return None
        ids.add(task_id)
        tasks.append(Task(task_id, label, float(cost)))
    return tuple(tasks)
