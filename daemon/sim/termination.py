"""The termination detector in a seeded simulation of working nodes, judged by the truth.

Theory of operation (daemon/core/termination.py for the algorithm and its guarantee;
ARCHITECTURE.md, "The waves"). Each node is a real :class:`~daemon.core.tasks.TaskBoard`
journaled to a :class:`~daemon.core.journal.MemoryJournal`: tasks run for simulated
time on its CPU slots, and moves between nodes follow the exactly-once hand-off
(TRANSFER resent every 0.5 s until acknowledged, ACK, FORGET, take-back at the deadline
plus grace, a late ACK reclaiming — what daemon/core/node.py does, in a few lines here).
Around them, drawn from the run's seed:

- submits arriving at random nodes at random times until ``submit_until``;
- a balancer moving the tail of a random node's queue to a random node (any node, not
  only a neighbour, as ``ctl rebalance`` does) until shortly after;
- a network with random delays, losses (``drop``), duplicates (``dup``) and cut links
  (``cuts``: one direction silent for seconds, long enough for a take-back, so the
  hand-off's two-generals case happens: the destination accepted, the donor took back);
- clocks (``clock_offset``): each node's clock ahead of the simulator's by a fixed
  amount, so that a move's expiry means different moments to its two ends;
- crashes (``crashes``): a node is down for a while, loses its wave instances, and comes
  back from its journal, refusing the waves that began before its restart (as
  daemon/core/node.py does);
- the detector (a :class:`~daemon.core.wave.Wave` class, ``Termination`` unless a test
  gives a broken one), started by an operator at a random initiator at a random time;
  a ``lost`` or ``timeout`` decision makes the operator start a new wave, as ``ctl wait``
  does.

The truth is the simulator's, never the nodes': which tasks exist (queued or running at
a board, or leaving one in an unanswered move — a down node's from its journal) and
when and where each entered from outside. At every decision ``{"terminated": True}``
the run checks that each task still present entered from outside after the final
round's token last left that node (the only case the algorithm cannot see: see
daemon/core/termination.py); with nothing entering during the round that is: nothing
present at all. And it checks liveness: the detection comes, and without faults within
three rounds of hops (3 x 2(N-1) x the longest delay) after the truth became idle for
good (after the last submit, move and fault).

Messages, node steps and the wave's calls all happen at event times; the wave's
``work()`` is called after every step that changed the node's :class:`Work` (as the
node core does). Everything is a function of the seed.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daemon.core.journal import MemoryJournal
from daemon.core.tasks import Task, TaskBoard, Transfer
from daemon.core.termination import Termination, Token
from daemon.core.wave import Work
from daemon.sim.seeds import subseed

MOVE_DEADLINE = 5.0  # as daemon/core/node.py
HOUSEKEEPING = 0.5
SETTLE = 1.0
GRACE = 1.0
RESTART = 0.2  # the operator's wait before it starts a new wave


@dataclass
class Config:
    nodes: int = 8
    extra: float = 0.3  # links beyond a spanning tree, as a fraction of the nodes
    cpus: tuple[int, int] = (1, 3)
    submits: int = 20
    submit_until: float = 8.0
    cost: tuple[float, float] = (0.05, 1.5)
    move_every: float = 0.3  # mean seconds between the balancer's moves, until submit_until + 2
    delay: tuple[float, float] = (0.001, 0.05)
    drop: float = 0.0
    dup: float = 0.0
    cuts: int = 0
    crashes: int = 0
    start: tuple[float, float] = (0.0, 6.0)  # when the operator starts the first wave
    budget: float = 120.0  # a wave's deadline at its initiator
    lost: float = 5.0  # the wave's parameter
    horizon: float = 600.0
    clock_offset: float = 0.0  # each node's clock is ahead by a fixed amount in [0, x] s: two differ by up to x
    # a scripted run (tests): fixed links, CPUs, initiator, and events
    # ("submit", time, node, (cost, ...)), ("move", time, donor, dest, count),
    # ("crash", time, node) and ("restart", time, node)
    edges: tuple = ()
    cpus_of: dict | None = None
    initiator: str | None = None
    script: tuple = ()
    extra_waves: int = 0  # more waves, at random initiators and times, each judged alike
    adversary: bool = False  # the balancer moves tasks from nodes the round's token has not
    # left yet to nodes it has, and half the submits go to nodes it has left: the moves a
    # detector must not miss, made as often as the run allows


@dataclass
class Report:
    seed: int
    nodes: int
    edges: list
    violations: list = field(default_factory=list)
    decisions: list = field(default_factory=list)  # (time, node, wave, result)
    detected_at: float | None = None
    idle_at: float | None = None  # when the truth became idle for good
    rounds: int = 0
    waves: int = 0
    token_hops: int = 0  # token messages sent, resends included
    hops_by_wave: dict = field(default_factory=dict)
    tasks: int = 0
    moves: int = 0
    take_backs: int = 0
    duplicated_tasks: int = 0  # tasks that ran twice (the hand-off's two-generals case)
    excused: int = 0
    detections: int = 0  # tasks present at a detection that entered after the token left

    @property
    def latency(self) -> float | None:
        if self.detected_at is None or self.idle_at is None:
            return None
        return self.detected_at - self.idle_at


def default_work(board: TaskBoard, sent: int, received: int) -> Work:
    """What the node core's ``WaveNode.work()`` says: idle = nothing queued or running
    and no move of its own unanswered."""
    return Work(not board.running and not board.queue_length and not board.leaving, sent, received)


class _Port:
    """The node as one wave instance sees it (daemon/core/wave.py ``WaveNode``)."""

    def __init__(self, sim: Sim, node: _Node, wave: str):
        self.sim, self._node, self.wave = sim, node, wave
        self.me = node.name
        self.parents = node.parents
        self.children = node.children
        self.neighbours = node.neighbours
        self.nodes = sim.names

    @property
    def now(self) -> float:
        return self.sim.local(self._node)

    def send(self, dest: str, msg: Any) -> None:
        if dest not in self._node.neighbour_set:
            raise AssertionError(f"{self.me} sent {type(msg).__name__} to {dest}, not a neighbour")
        if type(msg) is Token:
            self.sim.token_sent(self.me, dest, self.wave, msg)
        self.sim.transmit(self.me, dest, ("wave", self.wave, msg, self.sim.now))

    def decide(self, result: Any = None) -> None:
        self.sim.decided(self.me, self.wave, result)

    def sample(self, detail: bool = False) -> dict:
        return self._node.board.sample(self.sim.now, detail)

    def enqueue(self, tasks: int, cost: float) -> list[str]:
        raise AssertionError("the termination detector enqueues nothing")

    def set_deadline(self, at: float | None) -> None:
        self._node.deadlines[self.wave] = at
        if at is not None:
            here = at - self._node.offset
            while here + self._node.offset < at:
                here = math.nextafter(here, math.inf)
            self.sim.schedule(here, "wave-deadline", (self.me, self.wave))

    def budget(self) -> float | None:
        return self.sim.cfg.budget

    def work(self) -> Work:
        n = self._node
        return self.sim.work_of(n.board, n.sent, n.received)


class _Node:
    def __init__(self, name: str, cpus: int, parents: tuple, children: tuple):
        self.name = name
        self.cpus = cpus
        self.parents = parents
        self.children = children
        self.neighbours = tuple(dict.fromkeys(parents + children))
        self.neighbour_set = frozenset(self.neighbours)
        self.journal = MemoryJournal()
        self.board = TaskBoard(name, cpus, grace=GRACE, memory=600.0, journaled=True)
        self.up = True
        self.epoch = -1.0  # waves that began earlier are refused (a restart sets it)
        self.settled_at = 0.0
        self.waves: dict[str, Wave] = {}
        self.deadlines: dict[str, float | None] = {}
        self.sent = 0
        self.received = 0
        self.last_work: Work | None = None
        self.next_housekeeping = 0.0
        self.tick_at: float | None = None
        self.offset = 0.0  # its clock minus the simulator's


Wave = Termination  # the type of an instance here (any Wave subclass a test gives)


class Sim:
    def __init__(
        self,
        seed: int,
        cfg: Config,
        kind: type = Termination,
        work: Callable[[TaskBoard, int, int], Work] = default_work,
    ):
        self.seed, self.cfg, self.kind, self.work_of = seed, cfg, kind, work
        self.now = 0.0
        self._queue: list = []
        self._seq = 0
        self._rng = {
            c: random.Random(subseed(seed, f"termination-{c}"))
            for c in ("topology", "work", "network", "faults", "operator")
        }
        self._build()
        self.report = Report(seed, len(self.names), self.edges)
        self.entered: dict[str, tuple[str, float]] = {}  # task id -> (node, time) it entered from outside
        self.wave_start: dict[str, float] = {}
        self.initiators: dict[str, str] = {}
        self.current: str | None = None
        # (wave, round) -> node -> when it sent the copy of its last hop that was taken
        self.passes: dict[tuple[str, int], dict[str, float]] = {}
        self.used: set[tuple[str, int, int, str]] = set()  # (wave, round, hop, receiver) taken
        self.cut: dict[tuple[str, str], float] = {}
        self.fathers: dict[
            tuple[str, int], dict[str, str]
        ] = {}  # (wave, round) -> node -> whom it first got the token from
        self.last_dest: dict[tuple[str, int], dict[str, str]] = {}  # (wave, round) -> node -> where it last sent it
        self.ran: dict[str, int] = {}  # task id -> times it finished
        self.quiet_after = 0.0  # no submit, move or fault after this
        self.finished = False

    # --- set-up ---------------------------------------------------------------------

    def _build(self) -> None:
        rng, cfg = self._rng["topology"], self.cfg
        n = cfg.nodes
        names = [f"n{i}" for i in range(n)]
        rng.shuffle(names)
        edges = set(cfg.edges)
        if edges:
            names, n = sorted({x for e in edges for x in e}), 0
        for i in range(1, n):  # a random spanning tree, directed either way
            j = rng.randrange(i)
            edges.add((names[j], names[i]) if rng.random() < 0.5 else (names[i], names[j]))
        for _ in range(int(cfg.extra * n)):
            a, b = rng.sample(names, 2) if n > 1 else (names[0], names[0])
            if a != b and (b, a) not in edges:
                edges.add((a, b))
        self.edges = sorted(edges)
        self.names = frozenset(names)
        self.order = sorted(names)
        self.nodes = {}
        for name in self.order:
            parents = tuple(p for p, c in self.edges if c == name)
            children = tuple(c for p, c in self.edges if p == name)
            cpus = cfg.cpus_of[name] if cfg.cpus_of else rng.randint(*cfg.cpus)
            self.nodes[name] = _Node(name, cpus, parents, children)
            self.nodes[name].offset = rng.uniform(0.0, cfg.clock_offset)

    # --- the event queue ------------------------------------------------------------

    def local(self, node: _Node) -> float:
        """The node's clock: the simulator's time plus its fixed offset."""
        return self.now + node.offset

    def schedule(self, at: float, kind: str, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (max(at, self.now), self._seq, kind, payload))

    def transmit(self, src: str, dst: str, body: tuple) -> None:
        rng, cfg = self._rng["network"], self.cfg
        delay = rng.uniform(*cfg.delay)
        if rng.random() < cfg.drop or self.cut.get((src, dst), -1.0) > self.now:
            return
        self.schedule(self.now + delay, "msg", (src, dst, body))
        if rng.random() < cfg.dup:
            self.schedule(self.now + delay + rng.uniform(*cfg.delay), "msg", (src, dst, body))

    def run(self) -> Report:
        cfg = self.cfg
        w, f, o = self._rng["work"], self._rng["faults"], self._rng["operator"]
        for _ in range(cfg.submits):
            self.schedule(
                w.uniform(0, cfg.submit_until), "submit", (w.choice(self.order), w.randint(1, 6), w.uniform(*cfg.cost))
            )
        t = 0.0
        while True:
            t += w.expovariate(1.0 / cfg.move_every)
            if t > cfg.submit_until + 2:
                break
            self.schedule(t, "move", None)
        self.quiet_after = cfg.submit_until + 2
        for _ in range(cfg.cuts):
            a, b = f.sample(self.order, 2) if len(self.order) > 1 else (self.order[0],) * 2
            at = f.uniform(0, cfg.submit_until)
            self.schedule(at, "cut", (a, b, at + f.uniform(2.0, 9.0)))
            self.quiet_after = max(self.quiet_after, at + 9.0)
        for _ in range(cfg.crashes):
            name = f.choice(self.order)
            at = f.uniform(0, cfg.submit_until)
            down = f.uniform(0.3, 4.0)
            self.schedule(at, "crash", name)
            self.schedule(at + down, "restart", name)
            self.quiet_after = max(self.quiet_after, at + down)
        for event in cfg.script:
            self.schedule(event[1], "scripted", event)
            self.quiet_after = max(self.quiet_after, event[1])
        self.initiator = cfg.initiator or o.choice(self.order)
        first = o.uniform(*cfg.start)
        self.schedule(first, "start", None)
        self.quiet_after = max(self.quiet_after, first)  # liveness counts from the operator's start
        for _ in range(cfg.extra_waves):
            self.schedule(o.uniform(0, cfg.submit_until), "start", o.choice(self.order))
        for name in self.order:
            self._arm(self.nodes[name])
        while self._queue and not self.finished:
            at, _, kind, payload = heapq.heappop(self._queue)
            if at > cfg.horizon:
                break
            self.now = at
            getattr(self, "_on_" + kind.replace("-", "_"))(payload)
            if self.report.idle_at is None and self.now >= self.quiet_after and self._truth_idle():
                self.report.idle_at = self.now
        if self.report.detected_at is None:
            self.report.violations.append(
                f"no detection by {self.now:.2f} s (idle since {self.report.idle_at}); decisions: "
                f"{self.report.decisions[-3:]}"
            )
        elif self.report.idle_at is not None and not (cfg.drop or cfg.cuts or cfg.crashes or cfg.dup):
            # three rounds (the one under way, one carrying what it saw, a white one)
            # after the operator's wait between waves (module text)
            bound = RESTART + 3 * 2 * max(1, len(self.order) - 1) * cfg.delay[1] + 1e-6
            latency = self.report.latency
            if latency is not None and latency > bound:
                self.report.violations.append(
                    f"detected {latency:.3f} s after the truth became idle; the bound is {bound:.3f} s"
                )
        self.report.duplicated_tasks = sum(1 for k in self.ran.values() if k > 1)
        return self.report

    # --- nodes ------------------------------------------------------------------------

    def _step(self, node: _Node) -> None:
        """After anything happened at ``node``: catch its board up, write its journal,
        tell its detectors if its work changed, and arm its next tick."""
        if not node.up:
            return
        _, finished = node.board.advance(self.local(node))
        for task in finished:
            self.ran[task.id] = self.ran.get(task.id, 0) + 1
        node.journal.apply(node.board.take_journal())
        work = self.work_of(node.board, node.sent, node.received)
        if work != node.last_work:
            node.last_work = work
            for wave in list(node.waves.values()):
                if not wave.finished:
                    wave.work()
        node.journal.apply(node.board.take_journal())
        self._arm(node)

    def _arm(self, node: _Node) -> None:
        at = node.next_housekeeping
        due = node.board.next_deadline()
        if due is not None:  # the board's times are the node's clock's
            due_here = due - node.offset
            while due_here + node.offset < due:  # the float sum must reach it again
                due_here = math.nextafter(due_here, math.inf)
            at = min(at, due_here)
        if node.tick_at is None or at < node.tick_at:
            node.tick_at = at
            self.schedule(at, "tick", node.name)

    def _on_tick(self, name: str) -> None:
        node = self.nodes[name]
        if not node.up:
            return
        if node.tick_at is not None and node.tick_at <= self.now:
            node.tick_at = None
        if self.now >= node.next_housekeeping:
            node.next_housekeeping = self.now + HOUSEKEEPING
            for tr in node.board.transfers_to_resend(self.local(node), HOUSEKEEPING):
                self.transmit(name, tr.dest, ("transfer", tr))
            for move_id, donor in node.board.unconfirmed():
                self.transmit(name, donor, ("ack", move_id, True))
            if self.now >= node.settled_at:
                back = node.board.take_back_expired(self.local(node))
                self.report.take_backs += len(back)
        self._step(node)

    def _on_wave_deadline(self, payload) -> None:
        name, wave_id = payload
        node = self.nodes[name]
        wave = node.waves.get(wave_id)
        at = node.deadlines.get(wave_id)
        if not node.up or wave is None or wave.finished or at is None or at > self.local(node):
            return
        node.deadlines[wave_id] = None
        wave.expire()
        self._step(node)

    def _left(self) -> tuple[set[str], set[str]]:
        """The nodes the current round's token has left, and those it has left for
        good (sent back to where it first came from): the adversary's knowledge."""
        if self.current is None:
            return set(), set()
        rounds = [r for (w, r) in self.passes if w == self.current]
        if not rounds:
            return set(), set()
        key = (self.current, max(rounds))
        fathers, last = self.fathers.get(key, {}), self.last_dest.get(key, {})
        return set(self.passes[key]), {n for n, d in last.items() if fathers.get(n) == d}

    def _on_submit(self, payload) -> None:
        name, count, cost = payload
        if self.cfg.adversary and self._rng["work"].random() < 0.5:
            left = sorted(self._left()[0])
            if left:
                name = self._rng["work"].choice(left)
        node = self.nodes[name]
        if not node.up:
            return  # the operator's submit finds the node down: refused, nothing entered
        self._seq += 1
        tasks = [Task(f"{name}:s{self._seq}:{k}", "submitted", cost) for k in range(count)]
        for t in tasks:
            self.entered[t.id] = (name, self.now)
        node.board.submit(tasks, self.local(node))
        self.report.tasks += count
        self._step(node)

    def _on_move(self, _) -> None:
        rng = self._rng["work"]
        donors = [n for n in self.order if self.nodes[n].up and self.nodes[n].board.queue_length]
        if not donors or len(self.order) < 2:
            return
        dests = self.order
        if self.cfg.adversary:
            left, closed = self._left()
            # from a node the token has not left, or the initiator (it answers until the
            # end), to one it will not come back to
            init = self.initiators.get(self.current or "")
            donors = [n for n in donors if n not in left or n == init] or donors
            dests = [n for n in self.order if n in closed] or [n for n in self.order if n in left] or dests
        donor = self.nodes[rng.choice(donors)]
        dest = rng.choice([n for n in dests if n != donor.name] or [n for n in self.order if n != donor.name])
        self._move(donor, dest, rng.randint(1, donor.board.queue_length))

    def _move(self, donor: _Node, dest: str, count: int) -> None:
        self._seq += 1
        local = self.local(donor)
        tr = donor.board.move_out_tail(f"m{self._seq}", dest, count, local, local + MOVE_DEADLINE)
        if tr is not None:
            donor.sent += 1
            self.report.moves += 1
            self.transmit(donor.name, dest, ("transfer", tr))
        self._step(donor)

    def _on_scripted(self, event) -> None:
        if event[0] in ("crash", "restart"):
            getattr(self, "_on_" + event[0])(event[2])
        elif event[0] == "submit":
            _, _, name, costs = event
            node = self.nodes[name]
            self._seq += 1
            tasks = [Task(f"{name}:s{self._seq}:{k}", "submitted", c) for k, c in enumerate(costs)]
            for t in tasks:
                self.entered[t.id] = (name, self.now)
            node.board.submit(tasks, self.local(node))
            self.report.tasks += len(tasks)
            self._step(node)
        else:
            _, _, donor, dest, count = event
            self._move(self.nodes[donor], dest, count)

    def _on_cut(self, payload) -> None:
        a, b, until = payload
        self.cut[(a, b)] = until

    def _on_crash(self, name: str) -> None:
        node = self.nodes[name]
        if not node.up:
            return
        node.up = False
        node.waves.clear()
        node.deadlines.clear()

    def _on_restart(self, name: str) -> None:
        node = self.nodes[name]
        if node.up:
            return
        node.up = True
        node.epoch = self.now
        node.settled_at = self.now + SETTLE
        node.board = TaskBoard.restore(
            name, node.cpus, node.journal.state(), self.local(node), grace=GRACE, memory=600.0
        )
        node.last_work = None
        node.next_housekeeping = self.now
        node.tick_at = None
        self._step(node)

    # --- messages ---------------------------------------------------------------------

    def _on_msg(self, payload) -> None:
        src, dst, body = payload
        node = self.nodes[dst]
        if not node.up:
            return
        kind = body[0]
        if kind == "wave":
            self._wave_msg(node, src, body[1], body[2], body[3])
        elif kind == "transfer":
            tr: Transfer = body[1]
            new = not node.board.answered(tr.move_id)
            accepted = node.board.on_transfer(tr, self.local(node))
            if accepted and new:
                node.received += 1
            self.transmit(dst, src, ("ack", tr.move_id, accepted))
        elif kind == "ack":
            _, move_id, accepted = body
            if accepted:
                node.board.on_ack(move_id, src, self.local(node))
                self.transmit(dst, src, ("forget", move_id))
        elif kind == "forget":
            node.board.on_forget(body[1], src)
        self._step(node)

    def _wave_msg(self, node: _Node, src: str, wave_id: str, msg, sent_at: float) -> None:
        if self.wave_start[wave_id] < node.epoch:
            return  # a wave older than this incarnation: refused (daemon/core/node.py)
        if type(msg) is Token and (wave_id, msg.round, msg.hop, node.name) not in self.used:
            # the first copy of a hop its receiver takes is the pass (a later one is a
            # duplicate to it): the moment the sender's part in the round ended
            self.used.add((wave_id, msg.round, msg.hop, node.name))
            self.passes.setdefault((wave_id, msg.round), {})[src] = sent_at
        wave = node.waves.get(wave_id)
        if wave is None:
            wave = node.waves[wave_id] = self.kind(_Port(self, node, wave_id), wave_id, {"lost": self.cfg.lost})
        if not wave.finished:
            wave.receive(src, msg)

    # --- the operator -----------------------------------------------------------------

    def _on_start(self, extra: str | None) -> None:
        node = self.nodes[extra or self.initiator]
        if not node.up:
            if extra is None:
                self.schedule(self.now + 0.5, "start", None)
            return
        self.report.waves += 1
        wave_id = f"term-{self.report.waves}"
        self.wave_start[wave_id] = self.now
        self.initiators[wave_id] = node.name
        if extra is None:
            self.current = wave_id
        wave = node.waves[wave_id] = self.kind(_Port(self, node, wave_id), wave_id, {"lost": self.cfg.lost})
        wave.start()
        self._step(node)
        self.schedule(self.now + self.cfg.budget + 1.0, "operator-timeout", wave_id)

    def _on_operator_timeout(self, wave_id: str) -> None:
        """No decision reached the operator by the wave's deadline (its initiator
        crashed): it starts a new wave, as ``ctl wait`` does after naming the silent node."""
        if wave_id == self.current:
            self.current = None
            self.schedule(self.now, "start", None)

    def token_sent(self, node: str, dest: str, wave: str, token: Token) -> None:
        self.report.token_hops += 1
        self.report.hops_by_wave[wave] = self.report.hops_by_wave.get(wave, 0) + 1
        key = (wave, token.round)
        self.fathers.setdefault(key, {}).setdefault(dest, node)
        self.last_dest.setdefault(key, {})[node] = dest

    def decided(self, node: str, wave_id: str, result: Any) -> None:
        self.report.decisions.append((round(self.now, 6), node, wave_id, result))
        terminated = isinstance(result, dict) and result.get("terminated") is True
        if terminated:
            self._judge(node, wave_id, result)
            self.report.detections += 1
        if wave_id != self.current:
            return  # an extra wave's, or one the operator gave up on: judged, nothing more
        self.current = None
        if terminated and self.now >= self.quiet_after and self.report.idle_at is not None:
            self.report.rounds = result.get("rounds", 0)
            self.report.detected_at = self.now
            self.finished = True
        else:  # lost, timeout, or a detection in a quiet spell: the operator waits again
            self.schedule(self.now + RESTART, "start", None)

    # --- the truth --------------------------------------------------------------------

    def _present(self) -> dict[str, str]:
        """Every task that exists now, and where: queued or running at a board, or in
        an unanswered move of its donor (a down node's, from its journal)."""
        present: dict[str, str] = {}
        for name in self.order:
            node = self.nodes[name]
            if node.up:
                b = node.board
                tasks = [t for t, _ in b.running.values()] + list(b.queued)
                tasks += [t for tr in b.leaving for t in tr.tasks]
            else:
                state = node.journal.state()
                tasks = list(state.queue) + [t for _, _, ts in state.leaving.values() for t in ts]
            for t in tasks:
                present.setdefault(t.id, name)
        return present

    def _truth_idle(self) -> bool:
        return all(n.up for n in self.nodes.values()) and not self._present()

    def _judge(self, node: str, wave_id: str, result: dict) -> None:
        if node != self.initiators.get(wave_id):
            self.report.violations.append(
                f"{node} announced termination of {wave_id}, started at {self.initiators.get(wave_id)}"
            )
        rnd = int(result.get("rounds", 0))
        passes = self.passes.get((wave_id, rnd), {})
        for task_id, where in sorted(self._present().items()):
            entry_node, entry_at = self.entered[task_id]
            last = self.now if entry_node == node else passes.get(entry_node)
            if last is not None and entry_at > last:
                self.report.excused += 1
                continue
            self.report.violations.append(
                f"false detection at {self.now:.4f} s (wave {wave_id}, round {rnd}): task {task_id} is at "
                f"{where}; it entered at {entry_node} at {entry_at:.4f} s, before the token last left "
                f"{entry_node} ({last})"
            )


def simulate(
    seed: int,
    cfg: Config | None = None,
    kind: type = Termination,
    work: Callable[[TaskBoard, int, int], Work] = default_work,
) -> Report:
    """One seeded run (module text); the report's ``violations`` are empty when correct."""
    return Sim(seed, cfg or Config(), kind, work).run()
