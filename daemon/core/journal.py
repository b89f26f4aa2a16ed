"""What a node writes down so that a crash loses no task: the journal's records and a
pure replay of them.

Theory of operation (ARCHITECTURE.md, "Durable state"):

A :class:`daemon.core.tasks.TaskBoard` with journaling on appends one record to its
``journal`` list for every change a crash must not undo. The node core
(:mod:`daemon.core.node`) hands the records to its driver as one ``Persist`` effect
*before* any message or reply of the same step, so a peer or an operator never hears of
a state the journal does not hold (write-ahead). The daemon applies them to SQLite
(:mod:`daemon.journal`); the simulator to a :class:`MemoryJournal`, which plays the part
of the disk that survives a simulated crash. Both replay into the same
:class:`JournalState`, from which :meth:`TaskBoard.restore` rebuilds the board.

What is recorded, and why that is enough:

- ``Put``: tasks enter the queue (submitted here, arrived by a transfer, or taken back).
- ``Done``: a task finished. Starting a task is *not* recorded: a task running at the
  crash is still in the journal's queue, so it runs again after the restart and is
  counted done once (the done count is the journal's).
- ``Leave``: queued tasks leave under a move id toward a destination. Recorded before the
  first TRANSFER goes out, so a restarted donor resends it (the destination answers a
  repeat with its first answer) and never runs the tasks itself meanwhile.
- ``Acked`` / ``TakenBack``: the move ends, one way or the other. A late ACK after a
  take-back writes ``Leave`` and ``Acked`` again for the tasks still queued.
- ``Seen``: the destination's answer to a move id, recorded before the ACK goes out, so
  a restarted destination gives a resend the same answer (a forgotten id would enqueue
  the tasks a second time). ``Confirmed`` (FORGET arrived) and ``Dropped`` (the id's
  memory ran out) end that record.

- ``Told``: what the node's samples tell of its last Finn wave and balancing round
  (``last_finn``, ``last_round``: daemon/core/node.py), written in the transaction of the
  step that changed it, so a restarted node tells them as before its crash.

Not recorded: which echo waves a node sampled (a restarted node refuses waves older
than itself and its peers refuse waves older than its restart; see daemon/core/node.py),
and the running/queued split.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # tasks.py imports this module
    from daemon.core.tasks import Task


class Put(NamedTuple):
    tasks: tuple[Task, ...]
    front: bool  # taken back: to the front of the queue
    submitted: bool  # new work (counted in ``submitted``), not an arrival


class Done(NamedTuple):
    task_id: str


class Leave(NamedTuple):
    move_id: str
    dest: str
    expires: float
    tasks: tuple[Task, ...]


class Acked(NamedTuple):
    move_id: str


class TakenBack(NamedTuple):
    move_id: str


class Seen(NamedTuple):
    move_id: str
    source: str
    accepted: bool
    forget_after: float


class Confirmed(NamedTuple):
    move_id: str


class Dropped(NamedTuple):
    move_id: str


class Told(NamedTuple):
    key: str  # "last_finn" or "last_round"
    value: tuple[Any, ...]  # the fact, as daemon/core/messages.py LAST_FINN / LAST_ROUND shape it


# one record of the journal: what ``TaskBoard.journal`` holds and ``apply`` takes
Record = Put | Done | Leave | Acked | TakenBack | Seen | Confirmed | Dropped | Told


@dataclass
class JournalState:
    """A board's durable state: the queue in order (tasks running at the crash
    included), the counters, the moves still leaving and the answered move ids."""

    queue: list[Task] = field(default_factory=list)
    submitted: int = 0
    done: int = 0
    # move id -> (dest, expires, tasks)
    leaving: dict[str, tuple[str, float, tuple[Task, ...]]] = field(default_factory=dict)
    # move id -> (source, accepted, unconfirmed, forget after)
    seen: dict[str, tuple[str, bool, bool, float]] = field(default_factory=dict)
    told: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # "last_finn"/"last_round" -> the fact


class MemoryJournal:
    """The journal as plain data: what the simulator keeps of a node across a crash.

    ``apply`` takes the same records, in the same order, as :class:`daemon.journal.SqliteJournal`;
    ``state()`` replays them into a :class:`JournalState`. Tests check the two agree."""

    def __init__(self) -> None:
        self._queue: dict[int, Task] = {}  # position -> task; positions order the queue
        self._where: dict[str, list[int]] = {}  # task id -> the positions of its copies
        self._front = 0
        self._back = 0
        self.submitted = 0
        self.done = 0
        self.leaving: dict[str, tuple[str, float, tuple[Task, ...]]] = {}
        self.seen: dict[str, list[Any]] = {}  # move id -> [source, accepted, unconfirmed, forget after]
        self.told: dict[str, tuple[Any, ...]] = {}
        self.writes = 0  # Persist effects applied (one transaction each in SQLite)

    def apply(self, records: Iterable[Record]) -> None:
        self.writes += 1
        # Any: a record is dispatched on one type() call, which mypy does not narrow by;
        # the forms it narrows by cost more per record (a type() call per branch 61 ns
        # instead of 52, match 194 ns: a loop over the nine kinds, min of 15 runs)
        rec: Any
        for rec in records:
            kind = type(rec)
            if kind is Put:
                if rec.front:
                    self._put_front(rec.tasks)
                else:
                    for task in rec.tasks:
                        self._place(self._back, task)
                        self._back += 1
                if rec.submitted:
                    self.submitted += len(rec.tasks)
            elif kind is Done:
                self._remove(rec.task_id)
                self.done += 1
            elif kind is Leave:
                for task in rec.tasks:
                    self._remove(task.id)
                self.leaving[rec.move_id] = (rec.dest, rec.expires, rec.tasks)
            elif kind is Acked:
                self.leaving.pop(rec.move_id, None)
            elif kind is TakenBack:
                left = self.leaving.pop(rec.move_id, None)
                if left is not None:
                    self._put_front(left[2])
            elif kind is Seen:
                self.seen[rec.move_id] = [rec.source, rec.accepted, rec.accepted, rec.forget_after]
            elif kind is Confirmed:
                if rec.move_id in self.seen:
                    self.seen[rec.move_id][2] = False
            elif kind is Dropped:
                self.seen.pop(rec.move_id, None)
            elif kind is Told:
                self.told[rec.key] = tuple(rec.value)
            else:
                raise TypeError(f"not a journal record: {rec!r}")

    def _put_front(self, tasks: Sequence[Task]) -> None:
        for task in reversed(tasks):
            self._front -= 1
            self._place(self._front, task)

    def _place(self, pos: int, task: Task) -> None:
        self._queue[pos] = task
        self._where.setdefault(task.id, []).append(pos)

    def _remove(self, task_id: str) -> None:
        """One copy of the task leaves the queue: the earliest (the one that started).
        Found through ``_where``: a scan of the queue per task made a long queue's
        draining quadratic (98,000 tasks: 28 s in tests/node/test_journal.py)."""
        where = self._where.get(task_id)
        if not where:
            return
        pos = min(where)
        where.remove(pos)
        if not where:
            del self._where[task_id]
        del self._queue[pos]

    def state(self) -> JournalState:
        return JournalState(
            queue=[self._queue[p] for p in sorted(self._queue)],
            submitted=self.submitted,
            done=self.done,
            leaving=dict(self.leaving),
            seen={m: tuple(v) for m, v in self.seen.items()},
            told=dict(self.told),
        )
