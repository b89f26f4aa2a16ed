"""One node's tasks: the queue, the CPU slots, and the exactly-once hand-off of queued
tasks between nodes.

Theory of operation (ARCHITECTURE.md, "Moving a task exactly once" and "Tasks and burners"):

Slots. A node has ``cpus`` slots. A task holds one slot for ``cost`` seconds; a task
started at t finishes at t + cost. Queued tasks start FIFO on the first slot that frees
(Graham's list scheduling, 1966). Time is an argument, never read from a clock: the
board catches up with ``now`` event by event, in time order, so a slot freed at t' is
refilled at t' and the outcome does not depend on how often the driver calls
:meth:`TaskBoard.advance` (the sans-IO rule of aioquic and wsproto: time is passed in,
the next deadline is exposed). Tasks given to :meth:`TaskBoard.submit` without a time
have an unknown arrival between two calls: they start no earlier than the next ``now``.

Hand-off (ARCHITECTURE.md, "Moving a task exactly once"; retransmit until acknowledged,
duplicates recognised by their identifier, as in the data-link protocols of Tel, *Introduction to Distributed
Algorithms*, ch. 3):

1. The donor takes still-QUEUED tasks out of its queue under a move id and a
   destination (:meth:`move_out`); running tasks never move. They are *leaving*: no
   slot will start them, and they are reported as ``outgoing`` until acknowledged.
2. The driver sends the :class:`Transfer` and resends it until the ACK arrives
   (:meth:`transfers_to_resend`).
3. The destination remembers every move id it has answered (:meth:`on_transfer`): a new
   one enqueues the tasks and is ACKed; a repeat gets the same answer again and
   enqueues nothing. A transfer whose ``expires`` has passed is refused and its id
   remembered as refused, so no later copy can be accepted either.
4. On ACK the donor forgets the tasks (:meth:`on_ack`) and sends FORGET, which tells the
   destination to stop reporting the move as *unconfirmed* (:meth:`on_forget`). If no
   ACK came by ``expires + grace``, the donor takes the tasks back to the FRONT of its
   queue (:meth:`take_back_expired`): the destination refuses the transfer from
   ``expires`` on, and ``grace`` covers clock skew between the two hosts.
5. An accepted ACK that comes after the take-back (the destination accepted in time;
   its ACKs were lost or held up) proves the destination has the tasks: the donor takes
   those still queued out of its queue again and forgets them (:meth:`on_ack`), for the
   latest :data:`MAX_TAKEN_BACK` moves taken back.

Accounting (:func:`account`). Summed over the nodes of a consistent cut (Lai and Yang
1987: the daemon samples before handling a message sent after its sender sampled)::

    submitted == done + queued + running + |outgoing tasks whose move id no node reports unconfirmed|

A task in flight is counted once by its donor's ``outgoing``; once accepted, it is in
the destination's queue and the destination reports the move id as unconfirmed, which
cancels the donor's entry until the ACK arrives.

The one case no protocol can make exactly-once (the two generals' problem; Gray 1978):
the destination accepted, and every ACK, for every resend, was lost until
``expires + grace``. The donor then takes the tasks back, and those it starts before a
late ACK reaches it (step 5) run twice. A task is never lost; it may in that case be
duplicated. Resending until the take-back keeps the window as small as the link allows.

Memory is bounded: a move id is remembered (seen, unconfirmed) until ``expires +
memory``. ``memory`` must exceed ``grace`` plus the network's delay, so that every
resend the donor can still make meets a destination that remembers its answer; after
that, the expiry check alone refuses any stale copy. The driver calls
:meth:`take_back_expired` more often than every ``memory - grace`` seconds (the daemon
does so each housekeeping tick), so that no donor still reports a move its destination
has forgotten.

Task ids are assumed unique in the cluster (the daemon makes them from node name,
epoch and a counter).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from daemon.core import journal
from daemon.core.snapshot import in_flight

MAX_TRANSFER_TASKS = 10_000  # tasks in one TRANSFER: its frame stays well under 1 MiB
QUEUE_RUNS = 32  # runs [cost, count] a detailed sample gives of its queue
MAX_TAKEN_BACK = 64  # moves taken back that a late ACK can still reclaim (TaskBoard.on_ack)


@dataclass(frozen=True, slots=True)
class Task:
    """A piece of video to decode: it holds one CPU slot for ``cost`` seconds."""

    id: str
    label: str
    cost: float


@dataclass(frozen=True, slots=True)
class Transfer:
    """TRANSFER(move id, tasks): queued tasks handed from ``source`` to ``dest``.

    ``expires`` is an absolute time: the destination refuses the transfer after it.
    """

    move_id: str
    source: str
    dest: str
    tasks: tuple[Task, ...]
    expires: float


class _Queue:
    """A node's FIFO of queued tasks, with what moves and samples need made cheap.

    - Removal by id is O(1): the heap plan spreads a donor's tail over many receivers,
      one Move each, so cutting each move's tasks out of a long queue would make a
      round quadratic. Removed tasks are only counted in ``_gone``, and dropped when the
      head reaches them or when the queue is read in order (:meth:`tasks`, :meth:`pairs`).
    - The queue is kept a second time as (id, cost) pairs, which a sample copies in one
      C loop, and its work in integer nanoseconds: exact sums, read in O(1).
    - Copies are counted per id, so that even a task present twice (the one duplicate
      case of the module text) is removed once per removal, never lost.
    - The queue's costs are kept a third time run-length encoded, [cost, count] in queue
      order, so that a sample summarises a queue of millions in O(runs) (:meth:`runs`).
      Adding at either end, starting from the head and taking from the tail keep the
      runs up to date; a removal by id from the middle marks them stale (None), and the
      next :meth:`runs` rebuilds them once from the queue.
    """

    __slots__ = ("_tasks", "_pairs", "_by_id", "_copies", "_gone", "_size", "ns", "_runs")

    def __init__(self) -> None:
        self._tasks: deque[Task] = deque()
        self._pairs: deque[tuple[str, float]] = deque()
        self._by_id: dict[str, Task] = {}
        self._copies: dict[str, int] = {}  # id -> copies in _tasks, removed ones included
        self._gone: dict[str, int] = {}  # id -> copies removed but still in _tasks
        self._size = 0
        self.ns = 0
        self._runs: deque[list[float]] | None = deque()  # [cost, count] in queue order; None: stale

    def __len__(self) -> int:
        return self._size

    def extend(self, tasks: list[Task] | tuple[Task, ...], front: bool = False) -> None:
        pairs = [(t.id, t.cost) for t in tasks]
        if front:
            self._tasks.extendleft(reversed(tasks))
            self._pairs.extendleft(reversed(pairs))
        else:
            self._tasks.extend(tasks)
            self._pairs.extend(pairs)
        for t in tasks:
            self._by_id[t.id] = t
            self._copies[t.id] = self._copies.get(t.id, 0) + 1
        self._size += len(tasks)
        self.ns += _nanoseconds(tasks)
        runs = self._runs
        if runs is not None:
            for t in reversed(tasks) if front else tasks:
                end = runs[0] if front and runs else runs[-1] if runs else None
                if end is not None and end[0] == t.cost:
                    end[1] += 1
                elif front:
                    runs.appendleft([t.cost, 1])
                else:
                    runs.append([t.cost, 1])

    def popleft(self) -> Task:
        """The first task not removed (the queue must not be empty)."""
        while True:
            task = self._tasks.popleft()
            self._pairs.popleft()
            if not self._drop_copy(task.id):
                self._size -= 1
                self.ns -= _nanoseconds((task,))
                runs = self._runs
                if runs is not None:
                    runs[0][1] -= 1
                    if not runs[0][1]:
                        runs.popleft()
                return task

    def take(self, task_ids: Iterable[str]) -> list[Task]:
        """Remove the queued tasks among ``task_ids`` (others are skipped); return them
        in the order asked for."""
        taken: list[Task] = []
        for task_id in dict.fromkeys(task_ids):
            gone = self._gone.get(task_id, 0)
            if self._copies.get(task_id, 0) > gone:
                self._gone[task_id] = gone + 1
                taken.append(self._by_id[task_id])
        if taken:
            self._runs = None  # from anywhere in the queue: rebuilt when next asked for
        self._size -= len(taken)
        self.ns -= _nanoseconds(taken)
        # The plan takes from the tail: drop what is removed there now, so that usually
        # nothing is left for a purge to do.
        while self._tasks and self._gone.get(self._tasks[-1].id):
            self._drop_copy(self._tasks.pop().id)
            self._pairs.pop()
        return taken

    def take_tail(self, count: int) -> list[Task]:
        """Remove the last ``count`` queued tasks (fewer if the queue is shorter); return
        them in queue order. O(count), whatever the queue's length."""
        taken: list[Task] = []
        while self._tasks and len(taken) < count:
            task = self._tasks.pop()
            self._pairs.pop()
            if not self._drop_copy(task.id):
                taken.append(task)
        taken.reverse()
        self._size -= len(taken)
        self.ns -= _nanoseconds(taken)
        runs = self._runs
        if runs is not None:
            left: float = len(taken)  # runs are typed list[float]: [cost, count]
            while left:
                k = min(left, runs[-1][1])
                runs[-1][1] -= k
                left -= k
                if not runs[-1][1]:
                    runs.pop()
        return taken

    def runs(self, limit: int) -> list[list[float]]:
        """The queue's costs as at most ``limit`` runs [cost, count] in queue order: the
        last ``limit - 1`` runs exactly, everything before them as one run of their
        average cost (the tail is what moves; the head only needs its work)."""
        if self._runs is None:
            runs: deque[list[float]] = deque()
            for t in self.tasks():
                if runs and runs[-1][0] == t.cost:
                    runs[-1][1] += 1
                else:
                    runs.append([t.cost, 1])
            self._runs = runs
        if len(self._runs) <= limit:
            return [list(r) for r in self._runs]
        tail = [list(self._runs[k]) for k in range(len(self._runs) - limit + 1, len(self._runs))]
        count = self._size - sum(n for _, n in tail)
        work = self.ns / 1e9 - sum(c * n for c, n in tail)
        return [[work / count, count], *tail]

    def tasks(self) -> deque[Task]:
        self._purge()
        return self._tasks

    def pairs(self) -> list[tuple[str, float]]:
        self._purge()
        return list(self._pairs)

    def _drop_copy(self, task_id: str) -> bool:
        """One copy of ``task_id`` leaves _tasks; True if it was a removed one."""
        copies = self._copies[task_id] - 1
        if copies:
            self._copies[task_id] = copies
        else:
            del self._copies[task_id], self._by_id[task_id]
        gone = self._gone.get(task_id, 0)
        if not gone:
            return False
        if gone == 1:
            del self._gone[task_id]
        else:
            self._gone[task_id] = gone - 1
        return True

    def _purge(self) -> None:
        if not self._gone:
            return
        kept: deque[Task] = deque()
        for task in self._tasks:
            if self._gone.get(task.id):
                self._drop_copy(task.id)
            else:
                kept.append(task)
        self._tasks = kept
        self._pairs = deque((t.id, t.cost) for t in kept)


class _Leaving:
    """The donor's record of a move not acknowledged yet, with its summary for samples:
    [move id, destination, task count, work in seconds]."""

    __slots__ = ("transfer", "last_sent", "summary")

    def __init__(self, transfer: Transfer, last_sent: float):
        self.transfer = transfer
        self.last_sent = last_sent
        self.summary = [transfer.move_id, transfer.dest, len(transfer.tasks), _nanoseconds(transfer.tasks) / 1e9]


class TaskBoard:
    """The tasks of node ``node``: running, queued, leaving, and the move ids it answered.

    ``grace``: seconds past a move's ``expires`` before the donor takes its tasks back.
    ``memory``: seconds past a move's ``expires`` during which its id is remembered
    (must exceed ``grace``). Raises ``ValueError`` for bad arguments, naming the node.
    """

    __slots__ = (
        "node",
        "cpus",
        "grace",
        "memory",
        "submitted",
        "done",
        "running",
        "_queue",
        "clock",
        "_fresh",
        "_ends",
        "_seq",
        "_started",
        "_finished",
        "_outgoing",
        "_taken_back",
        "_seen",
        "_unconfirmed",
        "_forget_at",
        "journal",
    )

    def __init__(self, node: str, cpus: int, *, grace: float = 1.0, memory: float = 600.0, journaled: bool = False):
        if not isinstance(cpus, int) or cpus < 1:
            raise ValueError(f"node {node}: cpus must be a whole number >= 1, got {cpus!r}")
        if not grace >= 0:
            raise ValueError(f"node {node}: grace must be >= 0 seconds, got {grace!r}")
        if not memory > grace:
            raise ValueError(f"node {node}: memory ({memory!r} s) must exceed grace ({grace!r} s)")
        self.node = node
        self.cpus = cpus
        self.grace = float(grace)
        self.memory = float(memory)
        self.submitted = 0
        self.done = 0
        # slot seq -> (task, started at): keyed by a seq, not the task id, because the
        # hand-off's one duplicate case can bring a second copy of a task to this board
        self.running: dict[int, tuple[Task, float]] = {}
        self._queue = _Queue()
        self.clock = 0.0  # the latest `now` the board has caught up with
        self._fresh = 0  # tasks at the queue's tail submitted without a time
        self._ends: list[tuple[float, int]] = []  # (finishes at, slot seq), a heap
        self._seq = 0
        self._started: list[Task] = []  # since the last advance()
        self._finished: list[Task] = []
        self._outgoing: dict[str, _Leaving] = {}  # move id -> leaving, in move order
        self._taken_back: dict[str, Transfer] = {}  # the latest moves taken back, for a late ACK (on_ack)
        self._seen: dict[str, bool] = {}  # move id -> accepted?
        self._unconfirmed: dict[str, str] = {}  # accepted move ids awaiting FORGET -> donor, in order
        self._forget_at: list[tuple[float, int, str]] = []  # (forget after, seq, move id)
        # With ``journaled``, every change a crash must not undo appends a record here
        # (daemon/core/journal.py); the owner takes them with :meth:`take_journal`.
        self.journal: list[journal.Record] | None = [] if journaled else None

    def _log(self, record: journal.Record) -> None:
        if self.journal is not None:
            self.journal.append(record)

    def take_journal(self) -> list[journal.Record]:
        """The records logged since the last call (empty without journaling)."""
        records = self.journal
        if not records:
            return []
        self.journal = []
        return records

    @classmethod
    def restore(cls, node: str, cpus: int, state: journal.JournalState, now: float, **options: Any) -> TaskBoard:
        """A journaled board rebuilt from its journal's state after a crash: the queue
        (tasks that were running first, as they were taken from its head), the counters,
        the moves still leaving (resent at once) and the move ids answered."""
        board = cls(node, cpus, journaled=True, **options)
        board.clock = now
        board._queue.extend(list(state.queue))
        board._fresh = len(board._queue)
        board.submitted = state.submitted
        board.done = state.done
        for move_id, (dest, expires, tasks) in state.leaving.items():
            board._outgoing[move_id] = _Leaving(
                Transfer(move_id, node, dest, tuple(tasks), float(expires)), float("-inf")
            )
        for move_id, (source, accepted, unconfirmed, forget_after) in state.seen.items():
            board._seen[move_id] = accepted
            if unconfirmed:
                board._unconfirmed[move_id] = source
            board._seq += 1
            heapq.heappush(board._forget_at, (forget_after, board._seq, move_id))
        return board

    # --- work --------------------------------------------------------------------------

    def submit(self, tasks: Iterable[Task], now: float | None = None) -> None:
        """Enqueue new tasks (counted in ``submitted``). Without ``now`` they start no
        earlier than the next time the board is given; with it, they may start at ``now``."""
        tasks = list(tasks)
        if now is not None:
            self._catch_up(now)
        self._queue.extend(tasks)
        self.submitted += len(tasks)
        self._log(journal.Put(tuple(tasks), False, True))
        if now is None:
            self._fresh += len(tasks)
        else:
            self._catch_up(now)

    def advance(self, now: float) -> tuple[list[Task], list[Task]]:
        """Catch up with ``now``; return (started, finished) since the last call.

        Raises ``ValueError`` if ``now`` is earlier than a time already given."""
        self._catch_up(now)
        started, finished = self._started, self._finished
        self._started, self._finished = [], []
        return started, finished

    def next_deadline(self) -> float | None:
        """When :meth:`advance` has something to do next: the end of the earliest running
        task, or the board's clock if started/finished tasks are waiting to be collected
        or submitted tasks wait for a free slot. None when nothing is pending."""
        if self._started or self._finished or (self._fresh and len(self.running) < self.cpus):
            return self.clock
        return self._ends[0][0] if self._ends else None

    @property
    def queued(self) -> deque[Task]:
        """The queued tasks in order (read-only: change them through the methods)."""
        return self._queue.tasks()

    @property
    def queue_length(self) -> int:
        """How many tasks are queued (O(1), unlike ``len(queued)``)."""
        return len(self._queue)

    def busy_slots(self) -> int:
        return len(self.running)

    @property
    def remembered(self) -> int:
        """How many move ids this board still remembers (answered transfers): bounded by
        the transfers it answered within ``memory`` seconds of their expiry."""
        return len(self._seen)

    def unconfirmed(self) -> list[tuple[str, str]]:
        """(move id, donor) of the moves accepted here whose FORGET has not come."""
        return list(self._unconfirmed.items())

    def answered(self, move_id: str) -> bool:
        """Whether this board remembers its answer to ``move_id``."""
        return move_id in self._seen

    def is_idle(self) -> bool:
        """Nothing running, queued, leaving or unconfirmed."""
        return not (self.running or len(self._queue) or self._outgoing or self._unconfirmed)

    def _catch_up(self, now: float) -> None:
        if now < self.clock:
            raise ValueError(f"node {self.node}: time went back from {self.clock!r} to {now!r}")
        waiting = len(self._queue) - self._fresh  # queued before the last known time
        while True:
            if self._ends and self._ends[0][0] <= now:
                ends_at, seq = heapq.heappop(self._ends)
                task, _ = self.running.pop(seq)
                self.done += 1
                self._finished.append(task)
                self._log(journal.Done(task.id))
                if waiting > 0:  # the freed slot is refilled when it frees, not at `now`
                    waiting -= 1
                    self._start(self._queue.popleft(), ends_at)
            elif len(self._queue) and len(self.running) < self.cpus:
                # a free slot and nothing ending before `now`: the head arrived at `now`
                # (or at an unknown time since the last call), so it starts at `now`
                waiting = max(0, waiting - 1)
                self._start(self._queue.popleft(), now)
            else:
                break
        self._fresh = 0
        self.clock = now
        while self._forget_at and self._forget_at[0][0] < now:
            _, _, move_id = heapq.heappop(self._forget_at)
            self._seen.pop(move_id, None)
            self._unconfirmed.pop(move_id, None)
            self._log(journal.Dropped(move_id))

    def _start(self, task: Task, at: float) -> None:
        self._seq += 1
        self.running[self._seq] = (task, at)
        heapq.heappush(self._ends, (at + task.cost, self._seq))
        self._started.append(task)

    # --- moving tasks out (donor) -----------------------------------------------------

    def move_out(self, move_id: str, dest: str, task_ids: list[str], now: float, deadline: float) -> Transfer | None:
        """Take the still-queued tasks among ``task_ids`` out of the queue as move
        ``move_id`` to ``dest`` [step 1]; running and unknown ids are skipped.

        ``deadline`` is absolute: it becomes the transfer's ``expires``. Returns the
        Transfer to send, the same one again for a move id already leaving, or None when
        none of the tasks is still queued. Raises ``ValueError`` when ``dest`` is this node."""
        return self._move_out(move_id, dest, now, deadline, lambda: self._queue.take(task_ids))

    def move_out_tail(self, move_id: str, dest: str, count: int, now: float, deadline: float) -> Transfer | None:
        """:meth:`move_out` of the last ``count`` queued tasks (at most
        :data:`MAX_TRANSFER_TASKS`): the plan says how many, the donor picks which. Its
        tail is what the plan modelled as moving (daemon/core/plan.py, bulk plans)."""
        count = max(0, min(int(count), MAX_TRANSFER_TASKS))
        return self._move_out(move_id, dest, now, deadline, lambda: self._queue.take_tail(count))

    def _move_out(
        self, move_id: str, dest: str, now: float, deadline: float, take: Callable[[], list[Task]]
    ) -> Transfer | None:
        if dest == self.node:
            raise ValueError(f"node {self.node}: move {move_id} names this node as its destination")
        if move_id in self._outgoing:
            return self._outgoing[move_id].transfer
        self._catch_up(now)
        tasks = tuple(take())
        if not tasks:
            return None
        transfer = Transfer(move_id, self.node, dest, tasks, float(deadline))
        self._outgoing[move_id] = _Leaving(transfer, now)
        self._log(journal.Leave(move_id, dest, transfer.expires, tasks))
        return transfer

    @property
    def leaving(self) -> list[Transfer]:
        """The transfers not acknowledged yet, in move order (samples only count them)."""
        return [leaving.transfer for leaving in self._outgoing.values()]

    def transfers_to_resend(self, now: float, every: float) -> list[Transfer]:
        """Unacknowledged transfers last sent at least ``every`` seconds ago [step 2],
        in move order; each is marked as sent at ``now``."""
        due = []
        for leaving in self._outgoing.values():
            if now - leaving.last_sent >= every:
                leaving.last_sent = now
                due.append(leaving.transfer)
        return due

    def on_ack(self, move_id: str, sender: str | None = None, now: float | None = None) -> bool:
        """The destination has the tasks: forget them (step 4). True if the move was
        pending (the driver then sends FORGET); False for an unknown or repeated ACK, or
        one from a node (``sender``) that is not the move's destination.

        A late ACK of a move taken back (:meth:`take_back_expired`) is True too: the
        destination accepted it before its expiry, so the tasks of the move still queued
        here leave the queue again and are forgotten (``Leave`` and ``Acked`` journaled
        together); only those the donor has started meanwhile run twice."""
        leaving = self._outgoing.get(move_id)
        if leaving is None:
            return self._reclaim(move_id, sender, now)
        if sender is not None and sender != leaving.transfer.dest:
            return False
        del self._outgoing[move_id]
        self._log(journal.Acked(move_id))
        return True

    def _reclaim(self, move_id: str, sender: str | None, now: float | None) -> bool:
        transfer = self._taken_back.get(move_id)
        if transfer is None or (sender is not None and sender != transfer.dest):
            return False
        del self._taken_back[move_id]
        self._catch_up(self.clock if now is None else now)  # what a freed slot started by now is not queued
        tasks = tuple(self._queue.take([t.id for t in transfer.tasks]))
        if tasks:
            self._log(journal.Leave(move_id, transfer.dest, transfer.expires, tasks))
            self._log(journal.Acked(move_id))
            self._catch_up(self.clock)
        return True

    def take_back_expired(self, now: float) -> list[str]:
        """Moves unacknowledged past ``expires + grace`` [step 4]: their tasks go back
        to the FRONT of the queue, earliest move first. Returns those move ids."""
        expired = [m for m, leaving in self._outgoing.items() if now > leaving.transfer.expires + self.grace]
        if not expired:
            return []
        self._catch_up(now)
        back: list[Task] = []
        for move_id in expired:
            transfer = self._outgoing.pop(move_id).transfer
            back.extend(transfer.tasks)
            self._taken_back[move_id] = transfer
        while len(self._taken_back) > MAX_TAKEN_BACK:  # the oldest first
            del self._taken_back[next(iter(self._taken_back))]
        for move_id in reversed(expired):  # each to the front: the last first
            self._log(journal.TakenBack(move_id))
        self._queue.extend(back, front=True)
        self._catch_up(now)
        return expired

    # --- receiving tasks (destination) ------------------------------------------------

    def on_transfer(self, transfer: Transfer, now: float) -> bool:
        """Answer a TRANSFER [step 3]: True = accepted (ACK it), False = refused.

        A move id answered before gets the same answer and enqueues nothing. A new
        transfer is refused when its ``expires`` has passed (the donor takes the tasks
        back) or when it is addressed to another node."""
        answer = self._seen.get(transfer.move_id)
        if answer is not None:
            return answer
        self._catch_up(now)
        accepted = transfer.dest == self.node and transfer.expires >= now
        self._seen[transfer.move_id] = accepted
        self._seq += 1
        heapq.heappush(self._forget_at, (transfer.expires + self.memory, self._seq, transfer.move_id))
        self._log(journal.Seen(transfer.move_id, transfer.source, accepted, transfer.expires + self.memory))
        if accepted:
            self._unconfirmed[transfer.move_id] = transfer.source
            self._queue.extend(transfer.tasks)
            self._log(journal.Put(transfer.tasks, False, False))
            self._catch_up(now)
        return accepted

    def on_forget(self, move_id: str, sender: str | None = None) -> None:
        """The donor has the ACK: stop reporting the move as unconfirmed. The id itself
        stays remembered, so a late copy of the transfer is still only ACKed. A FORGET
        from a node (``sender``) that is not the move's donor changes nothing."""
        source = self._unconfirmed.get(move_id)
        if source is None or (sender is not None and sender != source):
            return
        del self._unconfirmed[move_id]
        self._log(journal.Confirmed(move_id))

    # --- reporting --------------------------------------------------------------------

    def sample(self, now: float, detail: bool = True, limit: int | None = None) -> dict[str, Any]:
        """This node's state as a plain dict (msgpack and JSON can carry it).

        Its size does not grow with the queue: counts, the work in seconds, and
        ``outgoing`` as [move id, destination, task count, work] per unacknowledged
        move. With ``detail`` (what the balancer's plan needs) also ``running_tasks``
        ([id, seconds left] per running task, at most ``cpus``), ``queue_runs`` (the
        queue's costs as at most :data:`QUEUE_RUNS` runs [cost, count], see
        :meth:`_Queue.runs`) and ``queued_tasks``, every queued [id, cost] in order —
        the last only when the queue holds at most ``limit`` tasks (always without a
        limit). Pairs are tuples (msgpack and JSON carry them as arrays, like lists).

        It reads, never advances: call :meth:`advance` first for an up-to-date picture
        (a task past its end shows 0 s remaining until then)."""
        running_tasks = [(t.id, max(0.0, start + t.cost - now)) for t, start in self.running.values()]
        sample = {
            "name": self.node,
            "cpus": self.cpus,
            "running": len(self.running),
            "queued": len(self._queue),
            "done": self.done,
            "submitted": self.submitted,
            "outgoing": [list(leaving.summary) for leaving in self._outgoing.values()],
            "unconfirmed": list(self._unconfirmed),
            "work": sum(r for _, r in running_tasks) + self._queue.ns / 1e9,
            "load": (len(self.running) + len(self._queue)) / self.cpus,
        }
        if detail:
            sample["running_tasks"] = running_tasks
            sample["queue_runs"] = self._queue.runs(QUEUE_RUNS)
            if limit is None or len(self._queue) <= limit:
                sample["queued_tasks"] = self._queue.pairs()
        return sample


def _nanoseconds(tasks: Iterable[Task]) -> int:
    return sum(round(t.cost * 1e9) for t in tasks)


def account(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The accounting rule over the samples of a consistent cut (see the module text).

    Returns the totals ``submitted``, ``done``, ``running``, ``queued``, ``in_flight``
    (daemon/core/snapshot.py's rule), ``surplus`` (tasks found
    minus tasks submitted: negative = lost, positive = duplicated) and ``balanced``."""
    totals = {"submitted": 0, "done": 0, "running": 0, "queued": 0}
    for s in samples:
        totals["submitted"] += s["submitted"]
        totals["done"] += s["done"]
        totals["running"] += s["running"]
        totals["queued"] += s["queued"]
    totals["in_flight"] = sum(count for count, _ in in_flight(samples).values())
    found = totals["done"] + totals["running"] + totals["queued"] + totals["in_flight"]
    totals["surplus"] = found - totals["submitted"]
    totals["balanced"] = totals["surplus"] == 0
    return totals
