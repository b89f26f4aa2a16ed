"""The balancer's plan: from every node's load, which queued tasks go where.

Theory of operation (ARCHITECTURE.md, "Balancing"):

The model of a node. A node with c CPUs is c slots. Running tasks hold their slots for
their remaining seconds; tasks already in flight to the node (``incoming``) come next,
then the queue, FIFO, each task on the slot that frees first (Graham's list scheduling,
1966). This gives every queued task a start s and a completion s + cost, the node's
*finish time* (the latest slot end: :func:`finish_time`) and its *earliest free time* E
(the earliest slot end after everything is placed). In-flight tasks are placed ahead of
the queue because they can no longer be moved; placing them there keeps the node's last
queued task the last one placed.

Policy ``heap`` (the default). Repeatedly take the donor with the latest finish time
and the receiver with the earliest free time (two heaps, ties broken by node order);
look at the donor's LAST queued task (cost x, completion C on the donor). On the
receiver it would complete at E + x. Move it when::

    E + x < C - x/2

that is, when the task itself completes earlier by more than half its cost. This is
our reading of the rule "lowers the donor's finish time by more than half the
task's cost", after Dask's work stealing (distributed/stealing.py steals when
``occ_thief + duration <= occ_victim - duration / 2``: the thief's backlog with the task
must stay below the victim's backlog less half the task). On one CPU the readings
agree: the last task's completion *is* the finish time, and E is the receiver's
backlog. On c CPUs taking one task off rarely changes the latest slot end at all
(another slot may end later), so the literal reading would stop all moves from
multi-CPU nodes; the task's own completion is what a move actually improves.

Only queued tasks move; a moved task is placed at the receiver as in flight and never
moves again in the same plan. A donor whose last task does not qualify is retired
(point 3 below shows it never qualifies later in the same plan).

What this guarantees (proved here, checked by tests/core/test_plan.py with hypothesis):

1. No task is lost, duplicated, moved twice, moved while running, or moved to its own
   node.
2. The makespan never rises: a moved task completes before C ≤ makespan on the
   receiver, and removing a donor's last task lowers one slot end.
3. Fixpoint, no bouncing: let μ be the least earliest-free time over all nodes. A move
   sets the donor's E to the start s of the task it gave, and s > E_receiver + x/2 ≥ μ;
   receivers' E only grow; so μ never decreases during a plan. A retired donor failed
   against a receiver at least μ, and its last task is unchanged; a moved task's
   completion was μ + x at the time. Hence, once the plan is applied in its own order
   (:func:`plan_steps`), every node's last task fails the test against every other
   node: re-planning moves nothing (exactly nothing, also in floating point: every
   step compares numbers computed the same way in both plans, and rounding is
   monotone). Applied as Moves, one per (source, dest) pair, tasks from different
   donors may reach a receiver in another order than the model's; then a re-plan can
   find a few more (``ctl bench sim --snapshots 20000``: 3 % of snapshots,
   at most 5 tasks; the makespan never rose).
4. Bound. Write m for the total CPUs, W for the total remaining work, R for the longest
   running remainder and q for the costliest queued task, on a snapshot with nothing
   in flight. After a heap plan::

       makespan ≤ max(R, W/m + (3/2)(1 - 1/m) q)

   Proof: let node k (c CPUs) end last, at M, and let l be its last queued task (start
   s, cost x). All k's slots are busy until s (list scheduling leaves no gaps); every
   other node j is busy on all its slots until E_j ≥ s - x/2 (point 3). If l ends at M:
   W ≥ (m - c)(s - x/2) + c·s + x, so M = s + x ≤ W/m + x(3m - c - 2)/(2m). If instead
   an earlier queued task u (cost y, start ≤ s) ends at M on another slot:
   W ≥ (m - c)(s - x/2) + (c - 2)s + (s + x) + M with s ≥ M - y, so
   M ≤ W/m + y(m - 1)/m + x(m - c - 2)/(2m) < W/m + (3/2)q. If a running task ends at
   M, M ≤ R.

   Consequence for the issue's "within 4/3 of LB", LB = max(W/m, longest task): it holds
   whenever W/m ≥ 4.5 (1 - 1/m) q, i.e. on snapshots with at least about 4.5 of the
   largest tasks' worth of work per CPU. It cannot hold in general: 5 unit tasks on 4
   CPUs give LB = 1.25 and no schedule beats 2; a pigeonhole term (with n > m tasks,
   two of the m + 1 largest share a slot) fixes that example, but not the heap rule's
   own margin: one CPU with queue [0.5, 1] beside an idle CPU has LB = optimum = 1, yet
   the last task would gain exactly half its cost, not more, so it stays and the
   makespan is 1.5. The half-cost margin, which is what stops tasks bouncing, costs up
   to x/2 on top of list scheduling's W/m + x (Graham's 2 - 1/m). Both examples are
   tests.

Policy ``seed``: the original lab's rule, kept as the baseline. In node order, every
node whose task count (running + queued + incoming) is at least 75% of its CPUs gives
its last queued task to the node with the most free CPUs (cpus - tasks, updated after
each move, ties by node order), if any node has a free CPU. One task per node per round.

Policy ``none``: no moves.

Bulk plans (:func:`plan_bulk`): queues of millions. The task-by-task plan needs every
queued task on the wire and one step per moved task; a node with 2,000,000 queued tasks
makes the echo carry tens of MB and the plan run for seconds. A detailed sample
therefore always carries a bounded summary (``queue_runs``: the queue's costs as at most
32 runs (cost, count), the head folded into one run of average cost) and lists its
tasks only while its queue is short (the daemon's limit: daemon/node.py); the operator
plans task by task when every sample lists its tasks and in bulk otherwise
(:func:`plan_samples`). The bulk ``heap`` plan is water-filling: the level is the
cluster's work per CPU, L = W/m; donors (work above cpus × L, most above first) give
from the tail of their queue, run by run, to the receiver with the most room below
its share (cpus × L − work), as many tasks k of the run's cost x as bring both nearer
the level, each side allowed past it by strictly less than x/2 (k·x < excess + x/2 and
k·x < room + x/2), the heap rule's half-cost margin in fluid form; a donor that would
give its whole run must also stay less than half its next tail task t below the level
(count·x < excess + t/2, else the run's last task stays). A donor stops at the first
tail task that does not move (it gives from the tail only). The cost is
O(runs + n log n) per pass for n nodes, whatever the queues' lengths. A move says how many
tasks (and their work by the summary); the donor takes that many from its tail
(``TaskBoard.move_out_tail``). A donor gives one receiver at most one TRANSFER's worth
(10,000 tasks) per round, so a huge queue drains over several rounds.

What the bulk plan guarantees (tests/core/test_plan.py, with hypothesis): a donor gives
at most its queued tasks, from its tail, and the moved work is what that tail holds (so
the total is conserved); a node gives before it receives, never after, and a task moves
once; a receiver ends less than half a task above the level. The plan repeats its pass
until one moves nothing (each move lowers the sum of the squared distances to the level
strictly, the margins being strict: it terminates). Fixpoint: re-planning the moved
loads (every move landed, no ``limit`` reached) takes nothing from the donors it has
just planned for. Proof sketch, in exact arithmetic (write e for a node's excess
work − cpus × L, room = −e): (a) the largest room never grows, in a plan or in the
re-plan: receivers' rooms only shrink, and a donor giving tasks of cost x to a
receiver with room r > x/2 is left with room < x/2 < r. (b) A donor that did not
receive afterwards, still above its share, was refused in the last pass, which moved
nothing: by its own side (e ≤ x/2 for its tail cost x, or its last task would leave it
t/2 below) or by the largest room (≤ x/2); the re-plan sees the same e and tail first,
and by (a) no larger room, so it is refused again (a donor at or below its share is
no donor in the re-plan: its work only grows by receiving). (c) A donor that received
afterwards had room ρ < t/2 for its next tail cost t when it stopped giving; it
receives only tasks y with y/2 < (its room) ≤ ρ, and ends with e < y/2 < t/2 above the
level: the re-plan's donor test fails on its side. (With plain ⌊·+½⌋ rounding a side
could land exactly x/2 past the level; a donor could then take a task back that it
had just given, and the re-plan would give it back again.) Nodes that only received
may still give in the re-plan: they end less than half a received task above the
level, and their own tail may be cheaper than that. It gives no
makespan guarantee of its own: it balances work per CPU, not the list schedule (the
order within a queue and the slot a task lands on are left to the nodes);
:func:`plan_moves` keeps its proofs and runs whenever the queues are short. The bulk
``seed`` policy is the lab's rule on counts, except that a node that has received in
the round gives nothing (it gives its tail, which may then be the task it received);
``none`` moves nothing.

Yardsticks: :func:`imbalance` (max over nodes of work per CPU / the cluster's work per
CPU), :func:`load_cv` (its coefficient of variation), :func:`makespan` of the model and
:func:`lower_bound`.

Determinism: the plan is a function of the loads' contents and order;
:func:`loads_from_samples` sorts nodes by name, so echo arrival order does not matter.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from daemon.core.snapshot import imbalance_of, in_flight, load_cv_of

POLICIES = ("heap", "seed", "none")

SEED_BUSY_SHARE = 0.75  # the original lab's threshold: give when tasks >= 75% of cpus


@dataclass(frozen=True)
class NodeLoad:
    """One node's load: remaining seconds of running tasks, queued (task id, cost) in
    queue order, and costs of tasks in flight to it. Raises ``ValueError`` (naming the
    node) when cpus < 1 or more tasks run than it has CPUs."""

    name: str
    cpus: int
    running: tuple[float, ...]
    queued: tuple[tuple[str, float], ...]
    incoming: tuple[float, ...] = ()
    # Remaining seconds of work: running remainders, queued and incoming costs.
    work: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.cpus < 1:
            raise ValueError(f"node {self.name}: cpus must be >= 1, got {self.cpus}")
        if len(self.running) > self.cpus:
            raise ValueError(f"node {self.name}: {len(self.running)} running tasks on {self.cpus} cpus")
        work = sum(self.running) + sum(map(itemgetter(1), self.queued)) + sum(self.incoming)
        object.__setattr__(self, "work", work)  # once: queues can be thousands long


@dataclass(frozen=True)
class Move:
    """Move the queued tasks ``task_ids`` from node ``source`` to node ``dest``."""

    source: str
    dest: str
    task_ids: tuple[str, ...]


class _Schedule:
    """One node's list schedule (Graham 1966): slot end times in a min-heap, and the
    placed tasks after the running ones as [task id, cost, start, movable]."""

    __slots__ = ("ends", "placed")

    def __init__(self, load: NodeLoad):
        self.ends = [0.0] * (load.cpus - len(load.running)) + sorted(load.running)  # sorted: a heap
        self.placed: list[tuple[str | None, float, float, bool]] = []
        for cost in load.incoming:  # already on the way: ahead of the queue, not movable
            self.append(None, cost, movable=False)
        for task_id, cost in load.queued:
            self.append(task_id, cost, movable=True)

    def append(self, task_id: str | None, cost: float, movable: bool) -> None:
        start = self.ends[0]
        heapq.heapreplace(self.ends, start + cost)
        self.placed.append((task_id, cost, start, movable))

    def pop_last(self) -> None:
        """Undo the last append: its slot ends at start again."""
        _, cost, start, _ = self.placed.pop()
        self.ends[self.ends.index(start + cost)] = start  # the same float as appended
        heapq.heapify(self.ends)

    @property
    def earliest_free(self) -> float:
        return self.ends[0]

    @property
    def finish(self) -> float:
        return max(self.ends)


def finish_time(node: NodeLoad) -> float:
    """When the node's last slot falls free: running remainders hold their slots, then
    incoming and queued tasks go FIFO onto the slot that frees first."""
    return _Schedule(node).finish


def makespan(loads: list[NodeLoad]) -> float:
    """The latest finish time over the nodes (0 for no nodes)."""
    return max((finish_time(n) for n in loads), default=0.0)


def lower_bound(loads: list[NodeLoad]) -> float:
    """LB = max(total work / total cpus, longest single task or remainder): no schedule
    of these tasks, even one free to move every queued task anywhere, ends earlier."""
    cpus = sum(n.cpus for n in loads)
    if not cpus:
        return 0.0
    longest = max(
        (x for n in loads for x in (*n.running, *n.incoming, *(c for _, c in n.queued))),
        default=0.0,
    )
    return max(sum(n.work for n in loads) / cpus, longest)


def imbalance(loads: list[NodeLoad]) -> float:
    """max over nodes of work per CPU, divided by the cluster's work per CPU (total work
    / total cpus); 1.0 when perfectly balanced or when every node is idle."""
    return imbalance_of([n.work for n in loads], [n.cpus for n in loads])


def load_cv(loads: list[NodeLoad]) -> float:
    """Coefficient of variation (population standard deviation / mean) of work per CPU
    over the nodes, each node counting once; 0.0 when all are idle."""
    return load_cv_of([n.work for n in loads], [n.cpus for n in loads])


def loads_from_samples(samples: list[dict[str, Any]]) -> list[NodeLoad]:
    """NodeLoads from ``TaskBoard.sample()`` dicts (each with its ``name``), sorted by
    name. Tasks in flight (daemon/core/snapshot.py ``in_flight``) count at their
    destination, as incoming.

    Raises ``ValueError`` naming the node and field when a sample lacks a field."""
    incoming: dict[str, list[float]] = {}
    for dest, (count, work) in _in_flight(samples).items():
        incoming[dest] = [work / count] * count  # a sample gives a move's work only
    loads = [
        NodeLoad(
            name=str(_field(s, "name")),
            cpus=int(_field(s, "cpus")),
            running=tuple(map(itemgetter(1), _field(s, "running_tasks"))),
            queued=tuple(map(tuple, _field(s, "queued_tasks"))),  # [id, cost] pairs, long
            incoming=tuple(incoming.get(s["name"], ())),
        )
        for s in samples
    ]
    loads.sort(key=lambda n: n.name)
    return loads


def _in_flight(samples: list[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    """daemon/core/snapshot.py's in-flight rule, after checking the samples' fields."""
    for s in samples:
        _field(s, "unconfirmed"), _field(s, "outgoing")
    return in_flight(samples)


def _field(sample: dict[str, Any], key: str) -> Any:
    try:
        return sample[key]
    except KeyError:
        raise ValueError(f"sample of node {sample.get('name', '?')}: missing field {key!r}") from None


def apply_moves(loads: list[NodeLoad], moves: list[Move]) -> list[NodeLoad]:
    """The loads once ``moves`` have landed: each moved task leaves its source's queue and
    joins the end of its destination's queue, in move order. Raises ``ValueError`` for
    an unknown node or a task not queued at the move's source."""
    queues = {n.name: list(n.queued) for n in loads}
    for mv in moves:
        if mv.source not in queues or mv.dest not in queues:
            raise ValueError(f"move {mv.source} -> {mv.dest}: unknown node")
        source = queues[mv.source]
        for task_id in mv.task_ids:
            at = next((k for k, (i, _) in enumerate(source) if i == task_id), None)
            if at is None:
                raise ValueError(f"move {mv.source} -> {mv.dest}: task {task_id} is not queued at {mv.source}")
            queues[mv.dest].append(source.pop(at))
    return [NodeLoad(n.name, n.cpus, n.running, tuple(queues[n.name]), n.incoming) for n in loads]


def plan_moves(loads: list[NodeLoad], policy: str = "heap") -> list[Move]:
    """The moves of one balancing round, one Move per (source, dest) pair, in the order
    the pairs were first used; within a Move, task ids in the order they were chosen.
    Raises ``ValueError`` for an unknown policy or two loads with the same name."""
    pairs: dict[tuple[str, str], list[str]] = {}
    for source, dest, task_id in plan_steps(loads, policy):
        pairs.setdefault((source, dest), []).append(task_id)
    return [Move(source, dest, tuple(ids)) for (source, dest), ids in pairs.items()]


def plan_steps(loads: list[NodeLoad], policy: str = "heap") -> list[tuple[str, str, str]]:
    """The same plan one task at a time, as (source, dest, task id) in the order the
    policy chose them: the order in which the model of the module text places them.
    (:func:`plan_moves` groups them by pair; the daemon's transfers from different
    donors may then land in another order, which the model cannot know.)"""
    if policy not in POLICIES:
        raise ValueError(f"unknown balancing policy {policy!r}: choose one of {', '.join(POLICIES)}")
    names = [n.name for n in loads]
    if len(set(names)) != len(names):
        dup = sorted(n for n in set(names) if names.count(n) > 1)
        raise ValueError(f"node {dup[0]} appears twice in the loads")
    if policy == "heap":
        steps = _plan_heap(loads)
    elif policy == "seed":
        steps = _plan_seed(loads)
    else:
        steps = []
    return [(loads[i].name, loads[j].name, task_id) for i, j, task_id in steps]


def _plan_heap(loads: list[NodeLoad]) -> list[tuple[int, int, str]]:
    steps: list[tuple[int, int, str]] = []
    if len(loads) < 2:
        return steps
    schedules = [_Schedule(n) for n in loads]
    version = [0] * len(loads)  # lazy heaps: an entry is current iff its version is
    donors = [(-s.finish, i, 0) for i, s in enumerate(schedules)]
    receivers = [(s.earliest_free, i, 0) for i, s in enumerate(schedules)]
    heapq.heapify(donors)
    heapq.heapify(receivers)
    while donors:
        _, i, v = heapq.heappop(donors)
        if v != version[i]:
            continue
        donor = schedules[i]
        if not donor.placed or not donor.placed[-1][3]:
            continue  # nothing queued, or its last task is one just moved in
        task_id, cost, start, _ = donor.placed[-1]
        assert task_id is not None  # movable: a queued task, and those have ids
        j = _earliest_receiver(receivers, version, exclude=i)
        receiver = schedules[j]
        # Dask's rule, read per task: it must complete earlier by more than half its cost
        if not receiver.earliest_free + cost < (start + cost) - cost / 2:
            continue  # retired: point 3 of the module text shows it stays so
        donor.pop_last()
        receiver.append(task_id, cost, movable=False)
        steps.append((i, j, task_id))
        for k in (i, j):
            version[k] += 1
            heapq.heappush(donors, (-schedules[k].finish, k, version[k]))
            heapq.heappush(receivers, (schedules[k].earliest_free, k, version[k]))
    return steps


def _earliest_receiver(receivers: list[tuple[float, int, int]], version: list[int], exclude: int) -> int:
    """The node with the earliest free time other than ``exclude`` (there are >= 2 nodes,
    each with exactly one current entry)."""
    while receivers[0][2] != version[receivers[0][1]]:
        heapq.heappop(receivers)
    if receivers[0][1] != exclude:
        return receivers[0][1]
    own = heapq.heappop(receivers)
    while receivers[0][2] != version[receivers[0][1]]:
        heapq.heappop(receivers)
    best = receivers[0][1]
    heapq.heappush(receivers, own)
    return best


def _plan_seed(loads: list[NodeLoad]) -> list[tuple[int, int, str]]:
    pairs = _seed_pairs([len(n.running) + len(n.queued) + len(n.incoming) for n in loads], loads)
    return [(i, j, loads[i].queued[-1][0]) for i, j in pairs]  # one task per node: its last queued


def _seed_pairs(
    tasks: list[int], loads: Sequence[NodeLoad | QueueSummary], give_after_receiving: bool = True
) -> list[tuple[int, int]]:
    """The lab's rule in node order, from each node's task count: (giver, receiver) pairs.
    Without ``give_after_receiving``, a node that has received in this round gives
    nothing (a bulk donor gives its tail, which may then be the task it received)."""
    pairs: list[tuple[int, int]] = []
    received: set[int] = set()
    free = [n.cpus - t for n, t in zip(loads, tasks)]
    most_free = [(-f, i) for i, f in enumerate(free)]  # lazy: current iff -key == free[i]
    heapq.heapify(most_free)
    for i, node in enumerate(loads):
        if tasks[i] < SEED_BUSY_SHARE * node.cpus or not node.queued or (i in received and not give_after_receiving):
            continue
        j = _most_free(most_free, free, exclude=i)
        if j is None:
            continue
        pairs.append((i, j))
        received.add(j)
        for k, delta in ((i, -1), (j, +1)):
            tasks[k] += delta
            free[k] -= delta
            heapq.heappush(most_free, (-free[k], k))
    return pairs


def _most_free(heap: list[tuple[int, int]], free: list[int], exclude: int) -> int | None:
    """The node with the most free CPUs (> 0) other than ``exclude``, lowest index on ties."""
    held = []
    best = None
    while heap:
        neg, k = heap[0]
        if -neg != free[k]:
            heapq.heappop(heap)  # stale
            continue
        if k == exclude:
            held.append(heapq.heappop(heap))
            continue
        best = k if -neg > 0 else None
        break
    for entry in held:
        heapq.heappush(heap, entry)
    return best


# --- bulk plans: queues of millions ----------------------------------------------------


@dataclass(frozen=True)
class QueueSummary:
    """One node's load as a bounded sample gives it: remaining seconds of its running
    tasks, its queue as runs (cost, count) in queue order (the head possibly one run of
    average cost), and the work and count of tasks in flight to it."""

    name: str
    cpus: int
    running: tuple[float, ...]
    runs: tuple[tuple[float, int], ...]
    incoming: float = 0.0
    incoming_count: int = 0
    work: float = field(init=False, repr=False, compare=False)
    queued: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.cpus < 1:
            raise ValueError(f"node {self.name}: cpus must be >= 1, got {self.cpus}")
        object.__setattr__(self, "queued", sum(n for _, n in self.runs))
        object.__setattr__(self, "work", sum(self.running) + sum(c * n for c, n in self.runs) + self.incoming)


@dataclass(frozen=True)
class BulkMove:
    """Move ``count`` queued tasks, ``work`` seconds by the plan's summary, from the
    tail of ``source``'s queue to ``dest``: the plan says how much, the donor picks
    which (``TaskBoard.move_out_tail``)."""

    source: str
    dest: str
    count: int
    work: float


def summaries_from_samples(samples: list[dict[str, Any]]) -> list[QueueSummary]:
    """QueueSummaries from detailed ``TaskBoard.sample()`` dicts, sorted by name; tasks
    in flight count at their destination (as in :func:`loads_from_samples`). Raises
    ``ValueError`` naming the node and field when a sample lacks a field."""
    incoming = {dest: (work, count) for dest, (count, work) in _in_flight(samples).items()}
    loads = [
        QueueSummary(
            name=str(_field(s, "name")),
            cpus=int(_field(s, "cpus")),
            running=tuple(float(r) for _, r in _field(s, "running_tasks")),
            runs=tuple((float(c), int(n)) for c, n in _field(s, "queue_runs")),
            incoming=incoming.get(s["name"], (0.0, 0))[0],
            incoming_count=incoming.get(s["name"], (0.0, 0))[1],
        )
        for s in samples
    ]
    loads.sort(key=lambda n: n.name)
    return loads


def plan_samples(samples: list[dict[str, Any]], policy: str = "heap") -> list[Move] | list[BulkMove]:
    """One balancing round from detailed samples: the task-by-task plan
    (:func:`plan_moves`, with its proofs) when every sample lists its queued tasks,
    else the bulk plan (:func:`plan_bulk`) on the samples' summaries."""
    if all("queued_tasks" in s for s in samples):
        return plan_moves(loads_from_samples(samples), policy)
    return plan_bulk(summaries_from_samples(samples), policy)


def plan_bulk(loads: list[QueueSummary], policy: str = "heap", limit: int | None = None) -> list[BulkMove]:
    """The moves of one balancing round on summaries. A donor's moves are consecutive
    pieces of its tail, in the order it is to give them (the last tasks first); a
    donor gives one receiver at most ``limit`` tasks per round (default: what one
    TRANSFER carries). See the module text ("Bulk plans"). Raises ``ValueError`` like
    :func:`plan_steps`."""
    from daemon.core.tasks import MAX_TRANSFER_TASKS

    plan_steps([], policy)  # checks the policy's name
    names = [n.name for n in loads]
    if len(set(names)) != len(names):
        dup = sorted(n for n in set(names) if names.count(n) > 1)
        raise ValueError(f"node {dup[0]} appears twice in the loads")
    cap = MAX_TRANSFER_TASKS if limit is None else limit
    if policy == "heap":
        pieces = _bulk_heap(loads, cap)
    elif policy == "seed":
        pieces = _bulk_seed(loads)
    else:
        pieces = []
    return [BulkMove(loads[i].name, loads[j].name, count, work) for i, j, count, work in pieces]


def _bulk_heap(loads: list[QueueSummary], cap: int) -> list[list[Any]]:
    pieces: list[list[Any]] = []  # [donor, receiver, count, work]: pieces of each donor's tail, in order
    cpus = sum(n.cpus for n in loads)
    total = sum(n.work for n in loads)
    if len(loads) < 2 or total <= 0:
        return pieces
    level = total / cpus
    work = [n.work for n in loads]
    share = [n.cpus * level for n in loads]
    runs = [[list(r) for r in n.runs if r[1] > 0] for n in loads]  # what is left to give, tail last
    given: dict[tuple[int, int], int] = {}
    received: set[int] = set()
    moved = True
    while moved:  # passes until one moves nothing (each move lowers the sum of squared excesses)
        moved = False
        room = [(work[j] - share[j], j) for j in range(len(loads)) if share[j] - work[j] > 0]
        heapq.heapify(room)  # receivers, most room first (keys are minus the room)
        donors = sorted(
            (i for i in range(len(loads)) if work[i] > share[i] and i not in received),
            key=lambda i: (share[i] - work[i], loads[i].name),
        )
        for i in donors:
            held = []  # receivers this donor has given `cap` tasks, or whose top is stale
            while runs[i] and room:
                cost, _ = runs[i][-1]  # the tail: what the donor gives first
                neg, j = room[0]
                quota = cap - given.get((i, j), 0)
                if quota <= 0:
                    held.append(heapq.heappop(room))
                    continue
                # tasks of this run whose move brings both sides nearer the level, each side
                # allowed to pass it by less than half a task (the heap rule's margin)
                k = 0 if cost <= 0 else min(_donor_gives(work[i] - share[i], runs[i]), _below_half(-neg, cost), quota)
                if k <= 0:
                    break  # the tail task stays, so everything before it stays too
                heapq.heappop(room)
                runs[i][-1][1] -= k
                if not runs[i][-1][1]:
                    runs[i].pop()
                work[i] -= k * cost
                work[j] += k * cost
                given[(i, j)] = given.get((i, j), 0) + k
                received.add(j)
                moved = True
                if pieces and pieces[-1][0] == i and pieces[-1][1] == j:
                    pieces[-1][2] += k
                    pieces[-1][3] += k * cost
                else:
                    pieces.append([i, j, k, k * cost])
                if share[j] - work[j] > 0:
                    heapq.heappush(room, (work[j] - share[j], j))
            for entry in held:
                heapq.heappush(room, entry)
    return pieces


def _donor_gives(excess: float, runs: list[list[Any]]) -> int:
    """How many tasks of its tail run a donor ``excess`` above the level may give: it
    passes the level by less than half a task of that run and, when it would give the
    whole run, by less than half the task it then has last (the next run's cost). So
    a donor that receives later, less than twice what it lacks (each task), ends less
    than half its last task above the level: it would not give again."""
    cost, count = runs[-1]
    k: int = min(count, _below_half(excess, cost))
    if k == count and len(runs) > 1 and not count * cost < excess + runs[-2][0] / 2:
        k -= 1  # the run's last task stays: the donor would fall too far below for its next tail
    return k


def _below_half(distance: float, cost: float) -> int:
    """The most tasks of ``cost`` that take a side ``distance`` above (below) the level
    to less than half a task past it: the largest k with k·cost < distance + cost/2."""
    return math.ceil(distance / cost + 0.5) - 1


def _bulk_seed(loads: list[QueueSummary]) -> list[list[Any]]:
    tasks = [len(n.running) + n.queued + n.incoming_count for n in loads]
    pairs = _seed_pairs(tasks, loads, give_after_receiving=False)
    return [[i, j, 1, next(c for c, n in reversed(loads[i].runs) if n)] for i, j in pairs]  # its last queued task
