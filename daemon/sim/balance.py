"""The burst scenario, simulated: task boards in simulated time, balanced by the plan.

Theory of operation (ARCHITECTURE.md, "Balancing" and "The node core"; TigerBeetle's VOPR for the determinism):

- Every node is a real :class:`daemon.core.node.NodeCore` (journaling off) driven with
  simulated time: ``tick`` at its ``next_deadline()``, its effects run by this loop. The
  balancer is the real :func:`daemon.core.plan.plan_moves` on the cores' task-board
  samples; each planned move is the operator's ``Move`` request to the source core, and
  the tasks go through the cores' own hand-off (TRANSFER, ACK, FORGET, with their
  resends), each message delivered ``move_delay`` seconds after it is sent. Nothing is
  lost in this scenario: it studies balancing, not failures (daemon/sim/chaos.py
  breaks the same cores).
- Events sit in a heap keyed (time, sequence): ties break in the order events were
  scheduled, so a run is a function of its arguments alone. Random draws come from
  ``random.Random("<seed>/burst/<concern>")``, one stream per concern (which nodes are
  hot, which node gets each task, task costs), so changing one leaves the others alone.
- Burst: at time 0, 4 tasks per CPU of the whole cluster land on up to 3 seeded
  nodes (each task on one of them at random), costs uniform in [0.5, 1.5] x
  ``task_time``. A balancing round runs at time 0 and every ``interval`` seconds while
  work remains, and (``triggers``, the default) whenever a core asks for one, as the
  supervisor's balancer does (daemon/cluster/balancer.py): every core is watched, its
  ``balance.wanted`` reaches the balancer ``move_delay`` seconds after it is sent, and
  the same :class:`daemon.core.asking.RoundGate` decides when a round starts (a round
  here takes no time, so none is ever in flight when another is asked for). The clock's
  first round is at ``first_round`` (default 0: with the burst; a real clock's next tick
  comes anywhere within an interval). The run ends when the last task finishes: that time is the makespan,
  compared with LB = max(total work / total cpus, longest task) of the burst.
- Every round checks the accounting rule of ARCHITECTURE.md, "Moving a task exactly once" on the samples (all taken at the
  same simulated instant, hence a consistent cut) and stops with ``RuntimeError``
  naming the seed if it fails.

Speed (1,000 nodes, a few seconds a policy): nodes with nothing running, queued, moving
or about to arrive are idle; their samples do not change, so each round samples only
the active ones and reuses the idle nodes' last sample and load, and an idle core is
not woken (its housekeeping has nothing to do). The yardsticks come
from the samples' ``work`` (plus work in flight, at its destination), which costs the
same whatever the queues' length; policy ``none`` plans nothing, so its rounds take
samples without the per-task lists.
"""

from __future__ import annotations

import heapq
from random import Random
from typing import Any, Iterable

from daemon.core import messages as m
from daemon.core.asking import RoundGate
from daemon.core.node import NodeConfig, NodeCore, Reply, Send
from daemon.core.plan import POLICIES, NodeLoad, loads_from_samples, plan_moves
from daemon.core.snapshot import imbalance_of, in_flight, load_cv_of
from daemon.core.tasks import Task, account
from daemon.sim.drive import EventBudget

SCENARIOS = ("burst",)
HOT_NODES = 3  # the burst lands on this many nodes (fewer in smaller clusters)
TASKS_PER_CPU = 4  # burst size: this many tasks per CPU of the whole cluster
COST_SPREAD = 0.5  # task costs uniform in [1 - spread, 1 + spread] x task_time
DEFAULT_TASK_TIME = 1.0  # seconds, when neither the caller nor the topology says
EPOCH = 1  # every core's incarnation (ns): one run, no restart
OPERATOR = b"balancer"  # the routing id the Move requests come from
EVENTS_PER_TASK = 200  # a run's event budget, per task and node (EventBudget)

# event kinds
_WAKE, _ROUND, _MESSAGE, _ASK = range(4)


def simulate(
    topology_or_nodes: Any,
    scenario: str = "burst",
    policy: str = "heap",
    seed: int = 0,
    interval: float = 1.0,
    task_time: float | None = None,
    move_delay: float = 0.01,
    triggers: bool = True,
    first_round: float = 0.0,
) -> dict:
    """Run one scenario; return its report (plain JSON-able data, see the keys below).

    ``topology_or_nodes``: a :class:`daemon.topology.Topology` (its ``task_time`` is the
    default) or a list of ``(name, cpus)``. Raises ``ValueError`` for bad arguments."""
    nodes, topology_task_time = _nodes(topology_or_nodes)
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")
    if policy not in POLICIES:
        raise ValueError(f"unknown balancing policy {policy!r}: choose one of {', '.join(POLICIES)}")
    if not interval > 0:
        raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
    if not move_delay >= 0:
        raise ValueError(f"move_delay must be >= 0 seconds, got {move_delay!r}")
    if task_time is None:
        task_time = topology_task_time or DEFAULT_TASK_TIME
    if not task_time > 0:
        raise ValueError(f"task_time must be > 0 seconds, got {task_time!r}")
    run = _BurstRun(nodes, policy, seed, interval, float(task_time), move_delay, triggers, first_round)
    run.run()
    return run.report(scenario)


def _nodes(topology_or_nodes: Any) -> tuple[list[tuple[str, int]], float | None]:
    if hasattr(topology_or_nodes, "names") and hasattr(topology_or_nodes, "node"):
        topology = topology_or_nodes
        nodes = [(name, topology.node(name).cpus) for name in topology.names]
        return nodes, getattr(getattr(topology, "cluster", None), "task_time", None)
    nodes = [(str(name), cpus) for name, cpus in topology_or_nodes]
    if not nodes:
        raise ValueError("the cluster has no nodes")
    names = [name for name, _ in nodes]
    if len(set(names)) != len(names):
        dup = sorted(n for n in set(names) if names.count(n) > 1)
        raise ValueError(f"node {dup[0]} appears twice")
    for name, cpus in nodes:
        if not isinstance(cpus, int) or cpus < 1:
            raise ValueError(f"node {name}: cpus must be a whole number >= 1, got {cpus!r}")
    return nodes, None


class _BurstRun:
    """The event loop of one run. Boards are indexed in the order of the node list."""

    def __init__(self, nodes: list[tuple[str, int]], policy: str, seed: int, interval: float,
                 task_time: float, move_delay: float, triggers: bool = True, first_round: float = 0.0):
        self.policy = policy
        self.triggers = triggers
        self.gate = RoundGate(interval, 0.0)
        self.first_round = first_round
        self.ask_round: float | None = None  # when the round a core asked for is scheduled
        self.seed = seed
        self.interval = interval
        self.task_time = task_time
        self.move_delay = move_delay
        self.names = [name for name, _ in nodes]
        self.index = {name: i for i, name in enumerate(self.names)}
        # Samples and loads come sorted by name (loads_from_samples sorts); keep that order.
        self.by_name = sorted(range(len(nodes)), key=lambda i: self.names[i])
        self.rank = {i: r for r, i in enumerate(self.by_name)}
        every = frozenset(self.names)
        self.cores = [NodeCore(NodeConfig(name, cpus, (), (), every), EPOCH, 0.0, journaled=False, detail_limit=None)
                      for name, cpus in nodes]
        if triggers:
            for core in self.cores:
                core.asker.watch(OPERATOR)
        self.boards = [core.board for core in self.cores]
        self.idents = [name.encode() for name in self.names]
        self.finished = [0] * len(nodes)  # each board's done count, as last seen
        self.cpus = sum(cpus for _, cpus in nodes)
        self.events: list[tuple] = []
        self.seq = 0
        self.wake_at: list[float | None] = [None] * len(nodes)
        self.arriving = [0] * len(nodes)  # transfers on their way to each node
        self.detail = policy != "none"  # only a plan needs every task
        # Idle boards (nothing running, queued, moving or arriving) are not sampled: all
        # a sample would say is their counters, kept here, and an empty load.
        self.active: set[int] = set()  # the other boards (ints: no string-hash order)
        self.idle_done = [0] * len(nodes)  # an idle board's counters; 0 while active
        self.idle_submitted = [0] * len(nodes)
        self.idle_load = [NodeLoad(name, cpus, (), ()) for name, cpus in nodes]
        self.loads = [self.idle_load[i] for i in self.by_name]  # the plan's input, by name
        self.done = 0
        self.tasks = 0
        self.makespan = 0.0
        self.lower_bound = 0.0
        self.moved = 0
        self.transfers = 0
        self.rounds: list[tuple[float, float, float]] = []  # (time, imbalance, cv)

    # --- the scenario --------------------------------------------------------------------

    def run(self) -> None:
        burst = self.burst()
        self.tasks = sum(len(b) for b in burst)
        for i, tasks in enumerate(burst):
            if tasks:
                self.activate(i)
                # the scenario's starting state: the burst is on the nodes' boards at 0
                # (NodeCore.enqueue makes tasks of one cost; the burst's costs differ)
                self.boards[i].submit(tasks, now=0.0)
                self.cores[i]._grew = True  # work landed: the core asks as after a submit
                self.schedule_wake(i, 0.0)
        self.lower_bound = max(sum(t.cost for b in burst for t in b) / self.cpus,
                               max((t.cost for b in burst for t in b), default=0.0))
        self.gate.next_clock = self.first_round  # the clock's first round (0: as the burst lands)
        self.at(self.first_round, _ROUND, "clock")
        # a run that should end and does not fails loudly (a task that never ends would
        # otherwise keep the rounds coming for ever): far above what a run needs
        budget = EventBudget(EVENTS_PER_TASK * (self.tasks + len(self.boards)) + 100_000,
                             f"burst, policy {self.policy}, seed {self.seed}")
        while self.events and self.done < self.tasks:
            budget.spend(len(self.events))
            now, _, kind, arg = heapq.heappop(self.events)
            if kind == _WAKE:
                if self.wake_at[arg] == now:
                    self.wake_at[arg] = None
                    self.advance(arg, now)
            elif kind == _ROUND:
                if arg == "ask":
                    self.ask_round = None
                elif now != self.gate.next_clock:
                    continue  # a round a core asked for moved the clock on
                if self.gate.start(now):
                    self.balance(now)
            elif kind == _ASK:
                if self.gate.ask(arg, now) and self.ask_round is None and self.done < self.tasks:
                    self.ask_round = max(now, self.gate.due() or now)
                    self.at(self.ask_round, _ROUND, "ask")
            else:
                source, dest, msg = arg
                if type(msg) is m.Transfer:
                    self.arriving[dest] -= 1
                self.step(dest, self.cores[dest].handle(self.idents[source], EPOCH, msg, now), now)

    def burst(self) -> list[list[Task]]:
        hot_rng = Random(f"{self.seed}/burst/hot-nodes")
        owner_rng = Random(f"{self.seed}/burst/owners")
        cost_rng = Random(f"{self.seed}/burst/costs")
        n = len(self.boards)
        hot = sorted(hot_rng.sample(range(n), min(HOT_NODES, n)))
        burst: list[list[Task]] = [[] for _ in range(n)]
        for k in range(TASKS_PER_CPU * self.cpus):
            cost = self.task_time * cost_rng.uniform(1 - COST_SPREAD, 1 + COST_SPREAD)
            burst[hot[owner_rng.randrange(len(hot))]].append(Task(f"burst-{k}", "burst", cost))
        return burst

    # --- events ----------------------------------------------------------------------------

    def at(self, when: float, kind: int, arg: Any) -> None:
        self.seq += 1
        heapq.heappush(self.events, (when, self.seq, kind, arg))

    def schedule_wake(self, i: int, now: float) -> None:
        if self.boards[i].is_idle():
            return  # nothing to run, resend or take back: no need to wake
        # an idle core's housekeeping may be overdue: it runs now, not in the past
        deadline = max(self.cores[i].next_deadline(), now)
        if self.wake_at[i] is None or deadline < self.wake_at[i]:
            self.wake_at[i] = deadline
            self.at(deadline, _WAKE, i)

    def advance(self, i: int, now: float) -> None:
        self.step(i, self.cores[i].tick(now), now)

    def step(self, i: int, effects: list, now: float) -> None:
        """Run core ``i``'s effects: its messages go out on the simulated network."""
        for effect in effects:
            if type(effect) is Reply and type(effect.msg) is m.BalanceWanted:
                self.at(now + self.move_delay, _ASK, effect.msg.reason)
            elif type(effect) is Send:
                dest = self.index[effect.dest]
                if type(effect.msg) is m.Transfer:
                    self.arriving[dest] += 1
                    self.activate(dest)
                self.at(now + self.move_delay, _MESSAGE, (i, dest, effect.msg))
        done = self.boards[i].done
        if done != self.finished[i]:
            self.done += done - self.finished[i]
            self.finished[i] = done
            self.makespan = now
        self.schedule_wake(i, now)

    def activate(self, i: int) -> None:
        if i not in self.active:
            self.active.add(i)
            self.idle_done[i] = self.idle_submitted[i] = 0

    def balance(self, now: float) -> None:
        samples = self.sample(now)  # the active boards'; the others are idle
        totals = account(samples)
        submitted = totals["submitted"] + sum(self.idle_submitted)
        found = totals["done"] + sum(self.idle_done) + totals["running"] + totals["queued"] + totals["in_flight"]
        if found != submitted:
            raise RuntimeError(
                f"seed {self.seed}: the task count does not add up at t={now:g}: {submitted} submitted, "
                f"{found} found ({totals}); replay with simulate(..., policy={self.policy!r}, seed={self.seed})"
            )
        flying = in_flight(samples)  # counts at its destination
        work = [s["work"] + flying.get(s["name"], (0, 0.0))[1] for s in samples]
        cpus = [s["cpus"] for s in samples]
        self.rounds.append((now, imbalance_of(work, cpus, self.cpus), load_cv_of(work, cpus, len(self.boards))))
        self.gate.finish(now, totals["queued"] > 0)
        if self.policy == "none":
            return self.next_round(now)
        for load in loads_from_samples(samples):
            self.loads[self.rank[self.index[load.name]]] = load
        for k, move in enumerate(plan_moves(self.loads, self.policy)):
            source = self.index[move.source]
            request = m.Move(f"r{len(self.rounds)}-{k}", move.dest, list(move.task_ids), 0)
            effects = self.cores[source].handle(OPERATOR, 0, request, now)
            for effect in effects:
                if type(effect) is Reply and type(effect.msg) is m.MoveOk and effect.msg.moved:
                    self.moved += len(effect.msg.moved)
                    self.transfers += 1
            self.step(source, effects, now)
        self.next_round(now)

    def next_round(self, now: float) -> None:
        if self.done < self.tasks and self.gate.next_clock is not None:
            self.at(self.gate.next_clock, _ROUND, "clock")

    def sample(self, now: float) -> list[dict]:
        """The samples of the active boards at ``now``, in board order; boards found
        idle leave the active set."""
        samples = []
        for i in sorted(self.active):
            board = self.boards[i]
            self.advance(i, now)
            if board.is_idle() and not self.arriving[i]:
                self.active.discard(i)
                self.idle_done[i], self.idle_submitted[i] = board.done, board.submitted
                self.loads[self.rank[i]] = self.idle_load[i]
                continue
            samples.append(board.sample(now, self.detail))
        return samples

    # --- the report ---------------------------------------------------------------------

    def report(self, scenario: str) -> dict:
        return {
            "scenario": scenario,
            "policy": self.policy,
            "seed": self.seed,
            "nodes": len(self.boards),
            "cpus": self.cpus,
            "tasks": self.tasks,
            "task_time": self.task_time,
            "interval": self.interval,
            "move_delay": self.move_delay,
            "triggers": self.triggers,
            "makespan": self.makespan,
            "lower_bound": self.lower_bound,
            "ratio": self.makespan / self.lower_bound if self.lower_bound else 1.0,
            "moves": self.moved,
            "transfers": self.transfers,
            "rounds": len(self.rounds),
            "imbalance": [[t, round(x, 6)] for t, x, _ in self.rounds],
            "imbalance_cv": _mean(cv for _, _, cv in self.rounds),
            "imbalance_cv_is": "mean over rounds of the coefficient of variation of work per CPU across nodes",
        }


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


ASKED = " and whenever a node asks"


def format_report(report: dict) -> str:
    """A few aligned lines for people."""
    imb = report["imbalance"]
    first = f"{imb[0][1]:.2f}" if imb else "-"
    last = f"{imb[-1][1]:.2f}" if imb else "-"
    rows = [
        ("scenario", f"{report['scenario']}, policy {report['policy']}, seed {report['seed']}"),
        ("cluster", f"{report['nodes']} nodes, {report['cpus']} cpus, {report['tasks']} tasks "
                    f"of ~{report['task_time']:g} s"),
        ("makespan", f"{report['makespan']:.3f} s   lower bound {report['lower_bound']:.3f} s   "
                     f"ratio {report['ratio']:.3f}"),
        ("moves", f"{report['moves']} tasks in {report['transfers']} transfers over {report['rounds']} rounds "
                  f"(every {report['interval']:g} s{ASKED if report['triggers'] else ''}, "
                  f"delay {report['move_delay']:g} s)"),
        ("imbalance", f"max/avg work per cpu {first} at the first round, {last} at the last; "
                      f"mean CV {report['imbalance_cv']:.3f}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
