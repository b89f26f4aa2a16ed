"""Whole nodes under faults: real :class:`~daemon.core.node.NodeCore` objects, one per
node of a topology, in seeded simulated time, over a network that loses, duplicates,
reorders, delays and partitions, with nodes that crash, restart and see their clocks
jump (``ctl sim chaos``; TigerBeetle's VOPR and FoundationDB's simulator in spirit).

Theory of operation.

Same code as the daemons. Each node is the core the ZeroMQ driver runs (daemon/node.py):
every message is framed by ``wire.pack`` and checked by ``wire.parse`` on the way, the
effects run in order (``Persist`` into a :class:`~daemon.core.journal.MemoryJournal`,
the simulated disk; ``Send`` onto the network; ``Reply`` to the operator), and
``tick`` is called at ``next_deadline()``. (The simulated network has no connections:
``Reconnect`` does nothing here, and a ``Relink``, which only asks for one, is not sent.)
The operator is simulated too: it submits
tasks, starts echo waves (``WaveStart`` of kind echo), plans moves from the detailed ones with the
real plan (daemon/core/plan.py, as ``Operator.rebalance`` does) and sends them as
``Move`` requests, and starts Finn waves (``WaveStart`` of kind finn at ``finn_initiators()``).

Determinism. A run is a function of the topology and one integer seed. Events sit in a
heap keyed (time, sequence); each concern draws from its own stream
(:func:`daemon.sim.seeds.subseed`): the workload, the fault schedule, the network.

Faults, during the first :attr:`ChaosConfig.duration` seconds:

- network: each node-to-node message is lost, delayed (a long extra delay, which also
  reorders), or duplicated, each with its own probability; a partition cuts the nodes
  in two groups until it heals (messages across are dropped);
- crash: the node's volatile state (the core) is lost, its journal kept; half the
  crashes strike in the middle of a step, after a random prefix of its effects (the
  process dies between a journal write and a send): they strike the node's next step
  that writes its journal, where write-ahead matters. Messages reaching a dead node are
  dropped, or held and delivered after its restart (a DEALER's backlog);
- restart: ``NodeCore(..., recovered=journal.state())`` with a new, larger epoch
  (daemon/core/node.py ``node_epoch``, with :attr:`ChaosConfig.clock_bound` as the bound
  on clock offsets); the node counts as ready, as the daemon says it is, when its clock
  reaches ``ready_at`` of that epoch;
- clock step: a node's wall clock jumps back or forward;
- stall: the node's process is stopped (SIGSTOP) and continued later, half the time
  right after its next step that sends a TRANSFER, half the stalls longer than a
  move's deadline plus grace. Nothing reaches it meanwhile: messages and operator
  requests wait and are read after it resumes, and its first step then is the overdue
  tick, as in the daemon's loop (daemon/node.py).

Then a quiet period: from the last heal and restart on, the network is reliable and
no new fault or work comes; the run waits until every message is delivered, every
board is idle (no task queued or running, no move leaving or unconfirmed) and every
echo deadline has passed, runs one last echo wave, and stops.

Checks (any failure is a ``problem``; the CLI prints the command that replays it):

- every echo result that is complete (one entry per node) is a consistent cut:
  submitted = done + queued + running + in flight (:func:`daemon.core.tasks.account`),
  up to the tasks of moves both accepted and taken back so far; no result names a
  node twice;
- every echo wave the operator started at a live initiator is answered (a result or
  an error) by its deadline — later only by the time the initiator's clock stepped
  back meanwhile — unless the initiator crashed first; an incomplete result names
  the neighbours given up on (``missing``);
- a Finn decision at node v comes after every ancestor of v (computed here from the
  topology's edge list) took part in the wave; at most one decision per node and wave;
- no node refuses as older than itself a wave begun after it was ready (a node called
  RUNNING joins every new wave);
- at the end every task id submitted (the journals' ``Put`` records) is done
  (the journals' ``Done`` records) exactly once; more than once only for a task of a
  move both accepted and taken back — the hand-off's documented case where every ACK
  was lost (daemon/core/tasks.py), counted as ``allowed_duplicates``;
- no donor takes a move back while an accepted ACK of that move waits unread in its
  inbox (come in while it was stalled): that ACK came in time, and taking back against
  it is a duplicate the protocol could have avoided (daemon/core/node.py, "Time");
- at the end no move is stuck (no ``outgoing``, no ``unconfirmed``), the last echo is
  complete and adds up, each journal agrees with its board, and no core ever counted
  an ``internal`` error;
- with :attr:`ChaosConfig.termination` (0 by default: the CI seeds' runs unchanged),
  termination-detection waves (daemon/core/termination.py) at random nodes and times:
  at each announcement, every task that exists (queued, running, or leaving in an
  unanswered move; a down node's from its journal) entered from outside after the
  final round's token last left that node (the copy its receiver read), or belongs to
  a move both accepted and taken back; one more wave over the quiet network, started
  with the last echo, must announce termination.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from random import Random

from daemon import wire
from daemon.core import journal as jr
from daemon.core import messages as m
from daemon.core.journal import MemoryJournal
from daemon.core.node import NodeConfig, NodeCore, Persist, Reply, Send, node_epoch, ready_at
from daemon.core.plan import BulkMove, plan_samples
from daemon.core.tasks import account
from daemon.core.termination import Token
from daemon.core.waves import wave_started
from daemon.sim.seeds import subseed

WORKLOAD = "chaos-workload"
FAULTS = "chaos-faults"
STALLS = "chaos-stalls"  # a stream of its own: the other faults of a seed stay as they were
NETWORK = "chaos-network"

T0 = 1_000_000.0  # the wall clock (s) at simulated time 0
OPERATOR = b"chaos-operator"
FINN_TIMEOUT = 60.0  # a Finn wave's budget: it sets no deadline, the budget only travels
EPS = 1e-6
FAULT_KINDS = ("loss", "duplicate", "delay", "reorder", "partition", "partitioned", "crash",
               "crash_mid_step", "restart", "backlog", "dead_letter", "clock_step", "stall", "held")

# event kinds; ties at equal times break by the sequence number
_DELIVER, _TICK, _OP, _REPLY, _FAULT, _WORK = range(6)


@dataclass(frozen=True)
class ChaosConfig:
    """The knobs of a run. The defaults are what ``ctl sim chaos`` and the CI seeds use."""

    duration: float = 2.0  # seconds of workload and faults
    hop: tuple[float, float] = (0.001, 0.01)  # a message's ordinary delay
    loss: float = 0.05
    duplicate: float = 0.05
    delay: float = 0.05  # probability of a long extra delay
    long_delay: tuple[float, float] = (0.05, 0.8)
    backlog: float = 0.5  # a message reaching a dead node waits for its restart
    crashes: int = 2  # at most this many crashes (the count is drawn)
    downtime: tuple[float, float] = (0.01, 0.8)
    partitions: int = 1
    partition_length: tuple[float, float] = (0.05, 1.0)
    clock_steps: int = 2
    clock_step: float = 1.0  # steps uniform in [-x, x] seconds
    stalls: int = 2  # at most this many stops (the count is drawn)
    stall_length: tuple[float, float] = (0.05, 1.5)
    long_stall: tuple[float, float] = (6.5, 8.5)  # past MOVE_DEADLINE + grace; half the stalls
    # The bound on clock offsets the nodes assume (daemon/core/node.py node_epoch,
    # ready_at): a node's clock is off the operator's by at most clock_steps x clock_step.
    clock_bound: float = 2.5
    submits: tuple[int, int] = (2, 4)
    tasks: tuple[int, int] = (1, 6)  # per submit
    cost: tuple[float, float] = (0.05, 0.5)
    echo_every: tuple[float, float] = (0.1, 0.3)
    echo_timeout: tuple[float, float] = (0.1, 0.8)
    detail: float = 0.7  # share of echo waves that plan moves
    finn_waves: int = 1  # at most this many (the count is drawn)
    # termination detection (daemon/core/termination.py): at most this many waves at random
    # nodes and times (drawn from a stream of their own: 0 leaves every other draw as it
    # was), each judged by the truth at its decision, and one more after the last echo,
    # which must detect
    termination: int = 0
    termination_timeout: tuple[float, float] = (0.5, 3.0)
    termination_lost: float = 1.0  # the kind's parameter: a silent receiver ends the wave
    settle: float = 30.0  # the quiet period ends by then, or the run reports it stuck
    max_events: int = 200_000


# Partitions longer than a move's deadline (daemon/core/node.py MOVE_DEADLINE + grace):
# every ACK of a move can be lost, so the hand-off's one duplicate case happens
# (``ctl sim chaos --long-partitions``; allowed_duplicates counts it).
LONG_PARTITIONS = ChaosConfig(duration=4.0, partitions=2, partition_length=(2.0, 8.0))


class _Node:
    __slots__ = ("name", "config", "core", "journal", "up", "incarnation", "offset", "epoch", "wake_at",
                 "ready_from", "backlog", "crash_mid", "steps", "stall", "stalled_until", "held", "stalls", "unread_acks")

    def __init__(self, name: str, config: NodeConfig):
        self.name = name
        self.config = config
        self.core: NodeCore | None = None
        self.journal = MemoryJournal()
        self.up = False
        self.incarnation = 0
        self.offset = 0.0  # the node's wall clock minus T0 minus simulated time
        self.epoch = 0
        self.ready_from = 0  # ns on the operator's clock: the node said it was ready then
        self.wake_at: float | None = None
        self.backlog: list = []
        self.crash_mid: float | None = None  # a crash waiting for the next step: share of its effects run
        self.steps: list[tuple[float, float]] = []  # clock steps (time, delta)
        self.stall: float | None = None  # a stall waiting for the node's next TRANSFER: its length
        self.stalled_until: float | None = None  # stopped until then
        self.held: list = []  # what reached it while stopped: ("deliver", src, item) or ("op", msg, None)
        self.stalls: list[tuple[float, float]] = []  # (from, to) of each stall
        self.unread_acks: dict[str, int] = {}  # move id -> accepted ACKs in its inbox, not read yet


class _Wave:
    __slots__ = ("initiator", "detail", "started", "timeout", "answered", "excused", "final")

    def __init__(self, initiator: str, detail: bool, timeout: float, final: bool = False):
        self.initiator = initiator
        self.detail = detail
        self.started: float | None = None  # when the initiator got the echo's WaveStart
        self.timeout = timeout
        self.answered: float | None = None
        self.excused = False  # the initiator crashed before answering
        self.final = final


class ChaosRun:
    """One run; :meth:`run` returns its report (plain JSON-able data)."""

    def __init__(self, topology, seed: int, config: ChaosConfig = ChaosConfig(), tracer=None):
        self.topology = topology
        self.tracer = tracer  # a daemon.sim.trace.ChaosTracer, or None
        self.seed = seed
        self.cfg = config
        self.names = list(topology.names)
        self.nodes = {n: _Node(n, NodeConfig.of(topology, n)) for n in self.names}
        self.ancestors = _ancestors(self.names, topology.edges())
        self.net_rng = Random(subseed(seed, NETWORK))
        self.now = 0.0
        self.events: list[tuple] = []
        self.seq = 0
        self.pending = 0  # events other than ticks
        self.handled = 0
        self.faults = dict.fromkeys(FAULT_KINDS, 0)
        self.problems: list[str] = []
        self.partition: frozenset | None = None
        self.down = 0
        self.stalled = 0  # nodes stopped right now
        self.quiet = False
        self.channel_last: dict[tuple[str, str], int] = {}
        # what the journals hold, observed as the Persist effects run
        self.submitted: dict[str, int] = {}  # task id -> times put as new work
        self.done: dict[str, int] = {}  # task id -> Done records
        self.move_tasks: dict[str, tuple[str, ...]] = {}
        self.accepted: set[str] = set()
        self.taken_back: set[str] = set()
        self.told_ids: list[str] = []  # ids the operator was told (SubmitOk, Finn's WaveDecided)
        # the operator's view
        self.waves: dict[str, _Wave] = {}
        self.wave_count = 0
        self.move_count = 0
        self.cuts = 0
        self.complete = 0
        self.incomplete = 0
        self.finn_sent: dict[tuple[str, str], float] = {}  # (wave, node) -> its first send of the wave
        self.finn_decided: set[tuple[str, str]] = set()
        self.moves_planned = 0
        self.final_wave: str | None = None
        self.final_ok = False
        # termination detection: where each task entered from outside, when the token last
        # left each node per (wave, round), the decisions judged
        self.entered: dict[str, tuple[str, float]] = {}
        self.token_passes: dict[tuple[str, int], dict[str, float]] = {}
        self.token_sent_at: dict[int, float] = {}  # send seq -> when that copy of a token left
        self.token_used: set[tuple[str, int, int, str]] = set()  # (wave, round, hop, receiver) read
        self.term_initiators: dict[str, str] = {}
        self.term = {"started": 0, "detected": 0, "lost": 0, "timeout": 0, "excused": 0, "allowed": 0}
        self.final_term: str | None = None
        self.final_term_ok = False

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> dict:
        for node in self.nodes.values():
            self._start(node)
        self._schedule_workload()
        self._schedule_faults()
        cfg = self.cfg
        limit = cfg.duration + cfg.settle
        while self.events:
            if self.handled >= cfg.max_events:
                self.problems.append(f"{cfg.max_events} events handled and the run has not settled")
                break
            t, _, kind, a, b, c = heapq.heappop(self.events)
            if t > limit:
                self.problems.append(f"not settled {cfg.settle:g} s after the faults: {self._unsettled()}")
                break
            self.now = t
            self.handled += 1
            if kind != _TICK:
                self.pending -= 1
            if not self.quiet and t >= cfg.duration and not self.down and not self.stalled and self.partition is None:
                self.quiet = True
            if kind == _TICK:
                self._tick(a, b, t)
            elif kind == _DELIVER:
                self._deliver(a, b, c)
            elif kind == _OP:
                self._operator_request(a, b)
            elif kind == _REPLY:
                self._reply(a, b)
            elif kind == _FAULT:
                self._fault(a, b)
            else:
                self._work(a, b)
            if self.quiet and not self.pending and self.final_wave is None and self._settled():
                self._final_echo()
            if (self.final_wave and self.waves[self.final_wave].answered is not None and not self.pending
                    and (not self.cfg.termination or self.final_term_ok or self.final_term is not None)):
                break
        return self._finish()

    def _push(self, t: float, kind: int, a=None, b=None, c=None) -> None:
        self.seq += 1
        if kind != _TICK:
            self.pending += 1
        heapq.heappush(self.events, (t, self.seq, kind, a, b, c))

    def _local(self, node: _Node) -> float:
        return T0 + self.now + node.offset

    # --- nodes ---------------------------------------------------------------------------

    def _start(self, node: _Node, recovered=None) -> None:
        local = self._local(node)
        node.epoch = self._new_epoch(node, local)
        # it serves at once and says ready when its clock reaches ready_at (daemon/node.py ReadyLine)
        ready = max(self.now, ready_at(node.epoch, self.cfg.clock_bound) - T0 - node.offset)
        node.ready_from = int((T0 + ready) * 1e9)
        node.core = NodeCore(node.config, node.epoch, local, recovered=recovered)
        node.up = True
        node.incarnation += 1
        node.wake_at = None
        self._schedule_wake(node)

    def _new_epoch(self, node: _Node, local: float) -> int:
        """The incarnation of a (re)starting node (daemon/core/node.py node_epoch): its
        clock in ns, ``clock_bound`` behind for a first start, ahead for a restart, and
        always larger than the one before.

        Why ahead: a node compares wave ids, stamped by the operator's clock, with its
        epoch, stamped by its own. A node whose clock is behind the operator's by more
        than its downtime would otherwise find a wave it joined before the crash younger
        than itself, and join it again: ``ctl sim chaos topologies/chaos/ring.toml --seed
        416`` with the bound at 0 has alpha decide a Finn wave twice. With the bound above
        any clock offset, the restarted node drops every wave it may have joined, and its
        peers close them (daemon/core/node.py, "Restarts")."""
        return node_epoch(local, node.epoch, node.incarnation > 0, self.cfg.clock_bound)

    def _crash(self, node: _Node) -> None:
        self._check_internal(node)
        node.core = None
        node.up = False
        node.crash_mid = None
        node.wake_at = None
        self.down += 1
        self.faults["crash"] += 1
        for wave in self.waves.values():
            if wave.initiator == node.name and wave.started is not None and wave.answered is None:
                wave.excused = True
        self._push(self.now + Random(subseed(self.seed, f"{FAULTS}/{self.faults['crash']}")).uniform(*self.cfg.downtime),
                   _FAULT, "restart", node.name)

    def _restart(self, node: _Node) -> None:
        self.down -= 1
        self.faults["restart"] += 1
        self._start(node, recovered=node.journal.state())
        backlog, node.backlog = node.backlog, []
        for k, (src, frame, seq) in enumerate(backlog):  # the DEALERs reconnect and flush
            self._push(self.now + 1e-4 * (k + 1), _DELIVER, src, node.name, (frame, seq))

    def _schedule_wake(self, node: _Node) -> None:
        deadline = node.core.next_deadline()
        t = deadline - T0 - node.offset
        while T0 + t + node.offset < deadline:  # the tick must see the deadline reached
            t = math.nextafter(t, math.inf)
        t = max(t, self.now)
        if node.wake_at is None or t < node.wake_at:
            node.wake_at = t
            self._push(t, _TICK, node.name, node.incarnation)

    def _tick(self, name: str, incarnation: int, t: float) -> None:
        node = self.nodes[name]
        if not node.up or node.incarnation != incarnation or node.wake_at != t:
            return  # stale: the node restarted, or its wake-up moved
        node.wake_at = None
        if node.stalled_until is not None:
            return  # stopped: its first step when it resumes is this tick
        self._step(node, node.core.tick(self._local(node)))

    def _deliver(self, src: str, dst: str, item) -> None:
        frame, seq, *in_inbox = item  # (frame, seq, True): held while its node was stopped
        if not in_inbox and self.partition is not None and (src in self.partition) != (dst in self.partition):
            self.faults["partitioned"] += 1
            return
        node = self.nodes[dst]
        if not node.up:
            if self.net_rng.random() < self.cfg.backlog:
                node.backlog.append((src, frame, seq))
                self.faults["backlog"] += 1
            else:
                self.faults["dead_letter"] += 1
            return
        epoch, msg = wire.parse(frame)
        accepted_ack = type(msg) is m.Ack and msg.accepted
        if node.stalled_until is not None:  # in its inbox, read when it resumes
            node.held.append(("deliver", src, item))
            self.faults["held"] += 1
            if accepted_ack:
                node.unread_acks[msg.move_id] = node.unread_acks.get(msg.move_id, 0) + 1
            return
        if accepted_ack and node.unread_acks.get(msg.move_id):
            node.unread_acks[msg.move_id] -= 1
        key = (src, dst)
        if seq < self.channel_last.get(key, 0):
            self.faults["reorder"] += 1
        else:
            self.channel_last[key] = seq
        if type(msg) is m.WaveMessage and type(msg.body) is Token:
            self._token_taken(src, dst, msg, seq)
        self._step(node, self._handle(node, src.encode(), epoch, msg), cause=(src, epoch, msg, seq))

    def _token_taken(self, src: str, dst: str, msg: m.WaveMessage, seq: int) -> None:
        """The first copy of a token hop its receiver reads is the pass (later ones are
        duplicates to it): the sender's part in the round ended when that copy left."""
        key = (msg.wave, msg.body.round, msg.body.hop, dst)
        if key not in self.token_used:
            self.token_used.add(key)
            self.token_passes.setdefault((msg.wave, msg.body.round), {})[src] = self.token_sent_at[seq]

    def _handle(self, node: _Node, sender: bytes, epoch: int, msg) -> list:
        """``node.core.handle``, checking that a node refuses no wave as older than itself
        that began after it said it was ready (RUNNING must mean reachable)."""
        stale = node.core.stats["stale"]
        effects = node.core.handle(sender, epoch, msg, self._local(node))
        if node.core.stats["stale"] > stale and (wave_started(msg.wave) or 0) >= node.ready_from:
            self.problems.append(f"node {node.name} refused wave {msg.wave} as older than itself at {self.now:.6f} s, "
                                 f"though the wave began after the node was ready")
        return effects

    def _step(self, node: _Node, effects: list, op: object = None, cause=None) -> None:
        """Run one step's effects in order — unless a crash strikes in the middle.
        ``cause`` is what the tracer records as the step's input (None: a tick)."""
        if self.tracer is not None:
            self._trace(node, effects, cause)
        if node.crash_mid is not None and any(type(e) is Persist for e in effects):
            k = int(node.crash_mid * (len(effects) + 1))
            self._effects(node, effects[:k], op)
            self.faults["crash_mid_step"] += 1
            self._crash(node)
            return
        self._effects(node, effects, op)
        if node.stall is not None and any(type(e) is Send and type(e.msg) is m.Transfer for e in effects):
            length, node.stall = node.stall, None
            self._stall(node, length)
        self._schedule_wake(node)

    def _trace(self, node: _Node, effects: list, cause) -> None:
        if node.crash_mid is not None and any(type(e) is Persist for e in effects):
            effects = effects[:int(node.crash_mid * (len(effects) + 1))]  # what runs before the crash
        outs = [(e.dest, e.msg) if type(e) is Send else (None, e.msg) for e in effects
                if type(e) is Reply or (type(e) is Send and type(e.msg) is not m.Relink)]  # see _effects
        self.tracer.step(self.now, node.name, node.epoch, cause, outs, len(node.core.board.queued))

    def _effects(self, node: _Node, effects: list, op) -> None:
        name = node.name
        for eff in effects:
            kind = type(eff)
            if kind is Send:
                msg = eff.msg
                mk = type(msg)
                if mk is m.Relink:
                    # reopen the link to its sender: this network has no connections to
                    # reopen (Reconnect is ignored too), so it is not sent, and a seed runs
                    # as it did before RELINK existed
                    continue
                if mk is m.Ack and msg.accepted:
                    self.accepted.add(msg.move_id)
                elif mk is m.WaveMessage:
                    self.finn_sent.setdefault((msg.wave, name), self.now)
                    if type(msg.body) is Token:  # when this copy left (see _token_taken)
                        self.token_sent_at[self.seq + 1] = self.now  # the seq _send gives it
                self._send(name, eff.dest, wire.pack(msg, node.epoch))
            elif kind is Persist:
                node.journal.apply(eff.records)
                self._observe(eff.records)
                for rec in eff.records:
                    if type(rec) is jr.Put and rec.submitted:
                        for task in rec.tasks:
                            self.entered.setdefault(task.id, (name, self.now))
                for rec in eff.records:
                    if type(rec) is jr.TakenBack and node.unread_acks.get(rec.move_id):
                        self.problems.append(f"node {name} took move {rec.move_id} back at {self.now:.6f} s with an "
                                             "accepted ACK of it unread in its inbox (it came while the node was stopped)")
            elif kind is Reply:
                _, msg = wire.parse(wire.pack(eff.msg, node.epoch))
                self._answered(name, msg, op)
                self._push(self.now + self.net_rng.uniform(*self.cfg.hop), _REPLY, name, msg)

    def _observe(self, records) -> None:
        for rec in records:
            kind = type(rec)
            if kind is jr.Done:
                self.done[rec.task_id] = self.done.get(rec.task_id, 0) + 1
            elif kind is jr.Put:
                if rec.submitted:
                    for task in rec.tasks:
                        self.submitted[task.id] = self.submitted.get(task.id, 0) + 1
            elif kind is jr.Leave:  # the first: a late ACK's reclaim leaves again with fewer
                self.move_tasks.setdefault(rec.move_id, tuple(t.id for t in rec.tasks))
            elif kind is jr.TakenBack:
                self.taken_back.add(rec.move_id)
            elif kind is jr.Seen and rec.accepted:
                self.accepted.add(rec.move_id)

    def _check_internal(self, node: _Node) -> None:
        core = node.core
        if core is not None and core.stats["internal"]:
            self.problems.append(f"node {node.name}: {core.stats['internal']} internal error(s), the last: {core.last_internal}")

    # --- the network ---------------------------------------------------------------------

    def _send(self, src: str, dst: str, frame: bytes) -> None:
        cfg = self.cfg
        rng = self.net_rng
        at = self.now + rng.uniform(*cfg.hop)
        self.seq += 1
        seq = self.seq  # the send's order on its channel (reorderings are counted by it)
        if self.tracer is not None:
            self.tracer.sent(src, self.nodes[src].epoch, dst, wire.parse(frame)[1], seq)
        if not self.quiet:
            if rng.random() < cfg.loss:
                self.faults["loss"] += 1
                return
            if rng.random() < cfg.delay:
                self.faults["delay"] += 1
                at += rng.uniform(*cfg.long_delay)
            if rng.random() < cfg.duplicate:
                self.faults["duplicate"] += 1
                self._push(at + rng.uniform(*cfg.long_delay), _DELIVER, src, dst, (frame, seq))
        self._push(at, _DELIVER, src, dst, (frame, seq))

    # --- faults ----------------------------------------------------------------------------

    def _schedule_faults(self) -> None:
        cfg = self.cfg
        rng = Random(subseed(self.seed, FAULTS))
        names = self.names
        for _ in range(rng.randint(0, cfg.crashes)):
            t = rng.uniform(0, cfg.duration)
            node = rng.choice(names)
            mid = rng.random() if rng.random() < 0.5 else None
            self._push(t, _FAULT, "crash", (node, mid))
        if len(names) > 1:
            for _ in range(rng.randint(0, cfg.partitions)):
                t = rng.uniform(0, cfg.duration)
                side = frozenset(rng.sample(names, rng.randint(1, len(names) - 1)))
                self._push(t, _FAULT, "partition", (side, rng.uniform(*cfg.partition_length)))
        for _ in range(rng.randint(0, cfg.clock_steps)):
            t = rng.uniform(0, cfg.duration)
            self._push(t, _FAULT, "clock", (rng.choice(names), rng.uniform(-cfg.clock_step, cfg.clock_step)))
        stalls = Random(subseed(self.seed, STALLS))
        for _ in range(stalls.randint(0, cfg.stalls)):
            t = stalls.uniform(0, cfg.duration)
            length = stalls.uniform(*(cfg.long_stall if stalls.random() < 0.5 else cfg.stall_length))
            self._push(t, _FAULT, "stall", (stalls.choice(names), length, stalls.random() < 0.5))
        self._push(cfg.duration, _FAULT, "end", None)

    def _fault(self, kind: str, arg) -> None:
        if kind == "crash":
            name, mid = arg
            node = self.nodes[name]
            if not node.up or node.crash_mid is not None or node.stalled_until is not None:
                return  # (a stopped process is never killed: as tests/e2e/test_chaos_real.py)
            if mid is None:
                self._crash(node)
            else:
                node.crash_mid = mid  # strikes during the node's next step
        elif kind == "restart":
            self._restart(self.nodes[arg])
        elif kind == "partition":
            side, length = arg
            if self.partition is None:
                self.partition = side
                self.faults["partition"] += 1
                self._push(self.now + length, _FAULT, "heal", None)
        elif kind == "heal":
            self.partition = None
        elif kind == "stall":
            name, length, at_next_transfer = arg
            node = self.nodes[name]
            if not node.up or node.stalled_until is not None or node.stall is not None or node.crash_mid is not None:
                return
            if at_next_transfer:
                node.stall = length  # strikes right after the node's next step that sends a TRANSFER
            else:
                self._stall(node, length)
        elif kind == "resume":
            self._resume(self.nodes[arg])
        elif kind == "clock":
            name, delta = arg
            node = self.nodes[name]
            node.offset += delta
            node.steps.append((self.now, delta))
            self.faults["clock_step"] += 1
            if node.up:
                node.wake_at = None
                self._schedule_wake(node)
        else:  # "end": a crash or stall still waiting for a step will not come
            for node in self.nodes.values():
                node.crash_mid = None
                node.stall = None

    def _stall(self, node: _Node, length: float) -> None:
        """SIGSTOP: the node takes no step until :meth:`_resume`."""
        node.stalled_until = self.now + length
        node.stalls.append((self.now, node.stalled_until))
        node.wake_at = None
        self.stalled += 1
        self.faults["stall"] += 1
        self._push(node.stalled_until, _FAULT, "resume", node.name)

    def _resume(self, node: _Node) -> None:
        """SIGCONT: the daemon's loop first runs its overdue tick, then reads its inbox."""
        node.stalled_until = None
        self.stalled -= 1
        if node.core.next_deadline() <= self._local(node):
            self._step(node, node.core.tick(self._local(node)))
        else:
            self._schedule_wake(node)
        held, node.held = node.held, []
        for k, (what, a, b) in enumerate(held):  # in the order they came, before anything new
            at = self.now + 1e-7 * (k + 1)  # (a hop takes a millisecond at least)
            if what == "deliver":  # already in its inbox: no partition drops it now
                self._push(at, _DELIVER, a, node.name, (*b, True))
            else:
                self._push(at, _OP, node.name, a)

    # --- the operator --------------------------------------------------------------------

    def _schedule_workload(self) -> None:
        cfg = self.cfg
        rng = Random(subseed(self.seed, WORKLOAD))
        names = self.names
        for k in range(rng.randint(*cfg.submits)):
            t = 0.0 if k == 0 else rng.uniform(0, cfg.duration * 0.6)
            msg = m.Submit(rng.randint(*cfg.tasks), round(rng.uniform(*cfg.cost), 6), "chaos")
            self._push(t, _WORK, "op", (rng.choice(names), msg))
        t = rng.uniform(*cfg.echo_every) / 2
        while t < cfg.duration:
            self._push(t, _WORK, "echo", (rng.choice(names), rng.random() < cfg.detail, rng.uniform(*cfg.echo_timeout)))
            t += rng.uniform(*cfg.echo_every)
        for k in range(rng.randint(0, cfg.finn_waves)):
            t = rng.uniform(0, cfg.duration)
            self._push(t, _WORK, "finn", (rng.randint(1, 2), round(rng.uniform(*cfg.cost), 6)))
        if cfg.termination:
            rng = Random(subseed(self.seed, "chaos-termination"))
            for _ in range(rng.randint(1, cfg.termination)):
                timeout = rng.uniform(*cfg.termination_timeout)
                self._push(rng.uniform(0, cfg.duration), _WORK, "termination", (rng.choice(names), timeout))

    def _work(self, kind: str, arg) -> None:
        hop = self.cfg.hop
        rng = self.net_rng
        if kind == "op":
            self._push(self.now + rng.uniform(*hop), _OP, *arg)
        elif kind == "echo":
            initiator, detail, timeout = arg
            wave = self._new_wave("e", initiator, detail, timeout)
            self._push(self.now + rng.uniform(*hop), _OP, initiator, m.WaveStart(wave, "echo", {"detail": detail}, timeout))
        elif kind == "final":
            initiator = self.names[0]
            self.final_wave = self._new_wave("e", initiator, False, 2.0, final=True)
            self._push(self.now + rng.uniform(*hop), _OP, initiator,
                       m.WaveStart(self.final_wave, "echo", {"detail": False}, 2.0))
        elif kind == "termination":
            initiator, timeout = arg
            self.wave_count += 1
            wave = wire.new_wave_id("term", int((T0 + self.now) * 1e9), f"c{self.wave_count}")
            self.term_initiators[wave] = initiator
            self.term["started"] += 1
            if timeout is None:  # the last one
                self.final_term, timeout = wave, 10.0
            start = m.WaveStart(wave, "termination", {"lost": self.cfg.termination_lost}, timeout)
            self._push(self.now + rng.uniform(*hop), _OP, initiator, start)
        elif kind == "finn":
            tasks, cost = arg
            self.wave_count += 1
            wave = wire.new_wave_id("f", int((T0 + self.now) * 1e9), f"c{self.wave_count}")
            for name in self.topology.finn_initiators():
                self._push(self.now + rng.uniform(*hop), _OP, name,
                           m.WaveStart(wave, "finn", {"tasks": tasks, "cost": cost}, FINN_TIMEOUT))

    def _new_wave(self, kind: str, initiator: str, detail: bool, timeout: float, final: bool = False) -> str:
        self.wave_count += 1
        wave = wire.new_wave_id(kind, int((T0 + self.now) * 1e9), f"c{self.wave_count}")
        self.waves[wave] = _Wave(initiator, detail, timeout, final)
        return wave

    def _operator_request(self, name: str, msg) -> None:
        node = self.nodes[name]
        if not node.up:
            return  # the operator's request times out
        if node.stalled_until is not None:
            node.held.append(("op", msg, None))
            self.faults["held"] += 1
            return
        if type(msg) is m.WaveStart and msg.wave in self.waves:
            self.waves[msg.wave].started = self.now
        epoch, msg = wire.parse(wire.pack(msg, 0))
        self._step(node, self._handle(node, OPERATOR, epoch, msg), msg, cause=(None, epoch, msg, None))

    def _answered(self, name: str, msg, op) -> None:
        """A reply leaves node ``name``: the checks that concern when it was made."""
        kind = type(msg)
        if kind is m.WaveDecided and msg.kind == "echo":
            wave = self.waves.get(msg.wave)
            if wave is not None and wave.answered is None:
                wave.answered = self.now
        elif kind is m.Error and type(op) is m.WaveStart and op.wave in self.waves:
            wave = self.waves[op.wave]
            if wave.answered is None:
                wave.answered = self.now
        elif kind is m.WaveDecided and msg.kind == "finn":
            key = (msg.wave, msg.node)
            if key in self.finn_decided:
                self.problems.append(f"finn wave {msg.wave}: node {msg.node} decided twice")
            self.finn_decided.add(key)
            early = [a for a in self.ancestors[msg.node] if self.finn_sent.get((msg.wave, a), math.inf) > self.now]
            if early:
                self.problems.append(f"finn wave {msg.wave}: node {msg.node} decided at {self.now:.6f} s before its "
                                     f"ancestor(s) {', '.join(sorted(early))} took part")
            self.told_ids.extend(msg.result["enqueued"])
        elif kind is m.SubmitOk:
            self.told_ids.extend(msg.ids)
        elif kind is m.WaveDecided and msg.kind == "termination":
            self._judge_termination(msg)

    def _reply(self, name: str, msg) -> None:
        if type(msg) is m.WaveDecided and msg.kind == "echo":
            self._echo_result(name, msg)

    def _echo_result(self, name: str, msg: m.WaveDecided) -> None:
        entries = wire.unpack_entries(msg.result)
        names = [e[0] for e in entries]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            self.problems.append(f"echo wave {msg.wave}: node(s) {', '.join(twice)} in the result twice")
            return
        states = [e[2] for e in entries]
        final = msg.wave == self.final_wave
        if set(names) == set(self.names):
            self.complete += not final
            books = account(states)
            allowed = self._duplicable()
            self.cuts += 1
            if not 0 <= books["surplus"] <= allowed:
                self.problems.append(
                    f"echo wave {msg.wave} at {self.now:.6f} s is not a consistent cut: {books['submitted']} submitted, "
                    f"{books['done']} done + {books['queued']} queued + {books['running']} running + "
                    f"{books['in_flight']} in flight (surplus {books['surplus']}, at most {allowed} allowed)")
            self.final_ok |= final
        else:
            self.incomplete += 1
            if not any(s.get("missing") for s in states):
                self.problems.append(f"echo wave {msg.wave}: incomplete ({len(names)} of {len(self.names)} nodes) "
                                     "and no node names a neighbour it gave up on")
        wave = self.waves.get(msg.wave)
        if wave is not None and wave.detail and not self.quiet:
            self._rebalance(states)

    def _rebalance(self, states: list[dict]) -> None:
        for mv in plan_samples(states):  # by ids, or by count when a queue is long
            self.move_count += 1
            self.moves_planned += 1
            if isinstance(mv, BulkMove):
                move = m.Move(f"mv-{self.move_count}", mv.dest, [], mv.count)
            else:
                move = m.Move(f"mv-{self.move_count}", mv.dest, list(mv.task_ids), 0)
            self._push(self.now + self.net_rng.uniform(*self.cfg.hop), _OP, mv.source, move)

    def _duplicable(self) -> int:
        """Tasks the two generals' case may have duplicated so far."""
        return sum(len(self.move_tasks.get(mid, ())) for mid in self.accepted & self.taken_back)

    # --- the end -------------------------------------------------------------------------

    def _settled(self) -> bool:
        for node in self.nodes.values():
            if not node.up or node.stalled_until is not None or not node.core.board.is_idle():
                return False
            if node.core._deadlines:  # a wave still waiting for its deadline
                return False
        return True

    def _unsettled(self) -> str:
        parts = []
        for node in self.nodes.values():
            if not node.up:
                parts.append(f"{node.name} down")
                continue
            s = node.core.board.sample(self._local(node), detail=False)
            if s["outgoing"] or s["unconfirmed"] or s["queued"] or s["running"]:
                parts.append(f"{node.name}: {s['queued']} queued, {s['running']} running, "
                             f"outgoing {[o[0] for o in s['outgoing']]}, unconfirmed {s['unconfirmed']}")
        return "; ".join(parts) or f"{self.pending} events pending"

    def _final_echo(self) -> None:
        """One last wave over the quiet network, begun after every node's epoch (a wave
        older than a node's start is refused there)."""
        start = max(self.now, max(n.epoch for n in self.nodes.values()) / 1e9 - T0 + 0.001)
        self.final_wave = ""  # scheduled
        self._push(start, _WORK, "final", None)
        if self.cfg.termination:
            self._push(start, _WORK, "termination", (self.names[0], None))

    def _judge_termination(self, msg: m.WaveDecided) -> None:
        """A termination wave decided: if it announced termination, every task that
        exists now (queued or running at a board, leaving it in an unanswered move; a down
        node's from its journal) must have entered from outside after the final round's
        token last left the node it entered at (daemon/core/termination.py: the one case
        no algorithm can see), or belong to a move both accepted and taken back (the
        hand-off's duplicate case, which the chaos's clock steps past the hand-off's grace
        can make appear after everyone was idle)."""
        result = msg.result if isinstance(msg.result, dict) else {}
        if msg.wave == self.final_term:
            self.final_term_ok = result.get("terminated") is True
            if not self.final_term_ok:
                self.problems.append(f"the last termination wave {msg.wave}, over a quiet network, decided {result}")
        if result.get("terminated") is not True:
            reason = result.get("reason")
            if reason in ("lost", "timeout"):
                self.term[reason] += 1
            return
        self.term["detected"] += 1
        if msg.node != self.term_initiators.get(msg.wave):
            self.problems.append(f"termination wave {msg.wave}: {msg.node} announced termination, not its initiator")
        passes = self.token_passes.get((msg.wave, int(result.get("rounds", 0))), {})
        duplicable = {t for mid in self.accepted & self.taken_back for t in self.move_tasks.get(mid, ())}
        for name, node in self.nodes.items():
            if node.up:
                board = node.core.board
                tasks = [t for t, _ in board.running.values()] + list(board.queued)
                tasks += [t for tr in board.leaving for t in tr.tasks]
            else:
                state = node.journal.state()
                tasks = list(state.queue) + [t for _, _, ts in state.leaving.values() for t in ts]
            for task in tasks:
                where, at = self.entered.get(task.id, ("?", -1.0))
                last = self.now if where == msg.node else passes.get(where)
                if last is not None and at > last:
                    self.term["excused"] += 1
                elif task.id in duplicable:
                    self.term["allowed"] += 1
                else:
                    self.problems.append(
                        f"termination wave {msg.wave} announced termination at {self.now:.6f} s while task {task.id} "
                        f"is at {name} (it entered at {where} at {at:.6f} s, before the token last left it: {last})")
                    return

    def _finish(self) -> dict:
        for node in self.nodes.values():
            self._check_internal(node)
        if self.cfg.termination and not self.final_term_ok and not any("termination wave" in p for p in self.problems):
            self.problems.append("the last termination wave did not detect termination")
        if not self.final_wave or self.waves[self.final_wave].answered is None:
            if not any("not settled" in p or "events handled" in p for p in self.problems):
                self.problems.append("the last echo wave was not answered")
        elif not self.final_ok:
            self.problems.append(f"the last echo wave {self.final_wave}, over a quiet network, came back incomplete")
        for wave_id, wave in self.waves.items():
            if wave.started is None or wave.excused:
                continue
            if wave.answered is None:
                self.problems.append(f"echo wave {wave_id} from {wave.initiator}: no answer")
                continue
            initiator = self.nodes[wave.initiator]
            back = sum(-d for t, d in initiator.steps if d < 0 and wave.started <= t <= wave.answered)
            stopped = sum(max(0.0, min(b, wave.answered) - max(a, wave.started)) for a, b in initiator.stalls)
            late = wave.answered - (wave.started + wave.timeout + back + stopped)
            if late > EPS:
                self.problems.append(f"echo wave {wave_id} from {wave.initiator}: answered {late:.6f} s after its deadline")
        for node in self.nodes.values():
            if node.up:
                board = node.core.board
                state = node.journal.state()
                if state.done != board.done or state.submitted != board.submitted:
                    self.problems.append(f"node {node.name}: the journal says {state.submitted} submitted, {state.done} "
                                         f"done; the board {board.submitted}, {board.done}")
        told = [t for t in self.told_ids if t not in self.submitted]
        if told:
            self.problems.append(f"the operator was told of {len(told)} task(s) no journal holds, e.g. {told[0]}")
        lost = sorted(t for t in self.submitted if t not in self.done)
        allowed_moves = self.accepted & self.taken_back
        may_twice: dict[str, int] = {}
        for mid in allowed_moves:
            for t in self.move_tasks.get(mid, ()):
                may_twice[t] = may_twice.get(t, 0) + 1
        duplicated = allowed = 0
        for task_id, n in self.done.items():
            if n > 1 and n - 1 <= may_twice.get(task_id, 0):
                allowed += 1
            elif n > 1 or self.submitted.get(task_id, 1) > 1:
                duplicated += 1
                if duplicated <= 3:
                    self.problems.append(f"task {task_id} submitted {self.submitted.get(task_id, 0)} time(s), done {n} times")
        if duplicated > 3:
            self.problems.append(f"{duplicated} tasks done more than once outside the all-ACKs-lost case")
        if lost:
            self.problems.append(f"{len(lost)} task(s) lost, e.g. {', '.join(lost[:3])}")
        unknown = [t for t in self.done if t not in self.submitted]
        if unknown:
            self.problems.append(f"{len(unknown)} task(s) done that no journal submitted, e.g. {unknown[0]}")
        answered = [w for w in self.waves.values() if w.started is not None and not w.final]
        return {
            "seed": self.seed,
            "nodes": len(self.names),
            "tasks": len(self.submitted),
            "done": sum(1 for t in self.submitted if t in self.done),
            "lost": len(lost),
            "duplicated": duplicated,
            "allowed_duplicates": allowed,
            "faults": dict(self.faults),
            "events": self.handled,
            "time": round(self.now, 6),
            "echoes": {"started": len(answered), "complete": self.complete, "incomplete": self.incomplete,
                       "cuts_checked": self.cuts, "excused": sum(w.excused for w in answered)},
            "finn_decisions": len(self.finn_decided),
            "termination": dict(self.term),
            "moves": {"planned": self.moves_planned, "accepted": len(self.accepted),
                      "taken_back": len(self.taken_back), "accepted_and_taken_back": len(allowed_moves)},
            "problems": self.problems,
            "ok": not self.problems,
        }


def _ancestors(names: list[str], edges: list[tuple[str, str]]) -> dict[str, frozenset[str]]:
    """Every node's ancestors (the nodes with a directed path to it, itself excluded
    unless on a cycle), from the edge list alone."""
    parents: dict[str, list[str]] = {n: [] for n in names}
    for parent, child in edges:
        parents[child].append(parent)
    result = {}
    for n in names:
        seen: set[str] = set()
        stack = list(parents[n])
        while stack:
            p = stack.pop()
            if p not in seen:
                seen.add(p)
                stack.extend(parents[p])
        seen.discard(n)
        result[n] = frozenset(seen)
    return result


def simulate_chaos(topology, seed: int, config: ChaosConfig = ChaosConfig(), tracer=None) -> dict:
    """One chaos run of ``topology`` with ``seed``; its report (``ok``, ``problems``,
    the figures). Never raises for a failed check: the report says it. With a
    :class:`daemon.sim.trace.ChaosTracer` every step is traced into it."""
    return ChaosRun(topology, seed, config, tracer).run()
