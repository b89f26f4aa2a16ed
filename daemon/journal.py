"""A node's journal on disk: SQLite in WAL mode, one file per node in the run directory.

The records and what they mean are daemon/core/journal.py's; this module only stores
them. :meth:`SqliteJournal.write` applies one ``Persist`` effect of the node core in one
transaction, and the daemon executes it before the messages of the same step
(write-ahead), so no peer or operator ever hears of a state the journal does not hold.

What is synced when. The database runs in WAL mode with ``synchronous=NORMAL``: a commit
appends the transaction to the write-ahead log with one ``write()``; the log is fsynced
only at checkpoints. A committed transaction therefore survives the death of the node
process (SIGKILL, a crash, an out-of-memory kill): the kernel holds the pages. It may
not survive the loss of the machine's power or kernel, where the last transactions
before the crash can be lost; ``synchronous="FULL"`` (an fsync per commit, measured in
BENCHMARKS.md) closes that gap at a cost per hand-off step.

Why no task is lost, given that: every task enters the board through a ``Put`` (submit,
arrival, take-back) committed before the operator hears ``submit.ok`` or the donor
hears the ACK; leaves it only through ``Done`` (it ran) or ``Leave`` (a move, kept in
``moves`` until ``Acked`` or ``TakenBack``). Running tasks stay in the ``tasks`` table
until done, so a restart runs them again and counts them once.

The history tables ``done_log`` (task id, per ``Done``) and ``taken_back_log`` (move id,
destination, task ids, per ``TakenBack``) are written in the same transaction as the
record they log. Nothing reads them back into the node; they let a test or an operator
check from outside that every task ran exactly once, and explain a duplicate as the
hand-off's one documented case (a move the destination accepted and the donor took back:
ARCHITECTURE.md, "Moving a task exactly once"). They are bounded: past
:data:`HISTORY_KEEP` rows, the oldest are trimmed (every :data:`HISTORY_TRIM` writes).
Read them with :func:`read_history`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from daemon.core import journal as rec
from daemon.core.journal import JournalState
from daemon.core.tasks import Task

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (pos INTEGER PRIMARY KEY, id TEXT NOT NULL, label TEXT NOT NULL, cost REAL NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_id ON tasks (id, pos);
CREATE TABLE IF NOT EXISTS moves (move_id TEXT PRIMARY KEY, dest TEXT NOT NULL, expires REAL NOT NULL, tasks TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seen (move_id TEXT PRIMARY KEY, source TEXT NOT NULL, accepted INTEGER NOT NULL,
                                 unconfirmed INTEGER NOT NULL, forget_after REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS told (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS done_log (n INTEGER PRIMARY KEY, id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS taken_back_log (n INTEGER PRIMARY KEY, move_id TEXT NOT NULL, dest TEXT NOT NULL, ids TEXT NOT NULL);
"""
HISTORY_KEEP = 100_000  # rows kept in each history table (done_log, taken_back_log)
HISTORY_TRIM = 1_000    # writes between trims of the history tables


class JournalError(Exception):
    """The journal cannot be opened or read (the text names the file)."""


class SqliteJournal:
    """The journal of one node at ``path`` (created with its directory if missing)."""

    def __init__(self, path: str | os.PathLike, synchronous: str = "NORMAL"):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={synchronous}")
            self.db.executescript(_SCHEMA)
            meta = dict(self.db.execute("SELECT key, value FROM meta"))
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"journal {self.path}: {exc}") from None
        self.fresh = "created" not in meta
        self.submitted = meta.get("submitted", 0)
        self.done = meta.get("done", 0)
        self.front = meta.get("front", 0)
        self.back = meta.get("back", 0)
        self.last_epoch = meta.get("epoch", 0)  # of the node's latest incarnation
        self.writes = 0
        if self.fresh:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('created', 1)")

    def set_epoch(self, epoch: int) -> None:
        """Record the epoch of the incarnation now starting (see daemon/core/node.py
        node_epoch)."""
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('epoch', ?)", (epoch,))
        self.last_epoch = epoch

    def close(self) -> None:
        self.db.close()

    def load(self) -> JournalState | None:
        """The state to recover, or None for a journal nothing was ever written to."""
        if self.fresh:
            return None
        state = JournalState(submitted=self.submitted, done=self.done)
        state.queue = [Task(i, lbl, c) for i, lbl, c in self.db.execute("SELECT id, label, cost FROM tasks ORDER BY pos")]
        for move_id, dest, expires, tasks in self.db.execute("SELECT move_id, dest, expires, tasks FROM moves ORDER BY rowid"):
            state.leaving[move_id] = (dest, expires, tuple(Task(*t) for t in json.loads(tasks)))
        for move_id, source, accepted, unconfirmed, forget_after in self.db.execute(
                "SELECT move_id, source, accepted, unconfirmed, forget_after FROM seen ORDER BY rowid"):
            state.seen[move_id] = (source, bool(accepted), bool(unconfirmed), forget_after)
        state.told = {key: tuple(json.loads(value)) for key, value in self.db.execute("SELECT key, value FROM told")}
        return state

    def write(self, records) -> None:
        """Apply one Persist effect's records in one transaction."""
        db = self.db
        db.execute("BEGIN")
        try:
            for r in records:
                kind = type(r)
                if kind is rec.Put:
                    self._put(r.tasks, r.front)
                    if r.submitted:
                        self.submitted += len(r.tasks)
                elif kind is rec.Done:
                    self._remove(r.task_id)
                    self.done += 1
                    db.execute("INSERT INTO done_log (id) VALUES (?)", (r.task_id,))
                elif kind is rec.Leave:
                    for t in r.tasks:
                        self._remove(t.id)
                    db.execute("INSERT OR REPLACE INTO moves VALUES (?, ?, ?, ?)",
                               (r.move_id, r.dest, r.expires, json.dumps([[t.id, t.label, t.cost] for t in r.tasks])))
                elif kind is rec.Acked:
                    db.execute("DELETE FROM moves WHERE move_id = ?", (r.move_id,))
                elif kind is rec.TakenBack:
                    row = db.execute("SELECT dest, tasks FROM moves WHERE move_id = ?", (r.move_id,)).fetchone()
                    if row is not None:
                        db.execute("DELETE FROM moves WHERE move_id = ?", (r.move_id,))
                        tasks = [Task(*t) for t in json.loads(row[1])]
                        self._put(tasks, True)
                        db.execute("INSERT INTO taken_back_log (move_id, dest, ids) VALUES (?, ?, ?)",
                                   (r.move_id, row[0], json.dumps([t.id for t in tasks])))
                elif kind is rec.Seen:
                    db.execute("INSERT OR REPLACE INTO seen VALUES (?, ?, ?, ?, ?)",
                               (r.move_id, r.source, int(r.accepted), int(r.accepted), r.forget_after))
                elif kind is rec.Confirmed:
                    db.execute("UPDATE seen SET unconfirmed = 0 WHERE move_id = ?", (r.move_id,))
                elif kind is rec.Dropped:
                    db.execute("DELETE FROM seen WHERE move_id = ?", (r.move_id,))
                elif kind is rec.Told:
                    db.execute("INSERT OR REPLACE INTO told VALUES (?, ?)", (r.key, json.dumps(list(r.value))))
                else:
                    raise TypeError(f"not a journal record: {r!r}")
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           (("submitted", self.submitted), ("done", self.done), ("front", self.front), ("back", self.back)))
            if self.writes % HISTORY_TRIM == HISTORY_TRIM - 1:
                for table in ("done_log", "taken_back_log"):
                    db.execute(f"DELETE FROM {table} WHERE n <= (SELECT MAX(n) FROM {table}) - ?", (HISTORY_KEEP,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.writes += 1

    def _put(self, tasks, front: bool) -> None:
        if front:
            rows = []
            for t in reversed(tasks):
                self.front -= 1
                rows.append((self.front, t.id, t.label, t.cost))
        else:
            rows = [(self.back + k, t.id, t.label, t.cost) for k, t in enumerate(tasks)]
            self.back += len(rows)
        self.db.executemany("INSERT INTO tasks VALUES (?, ?, ?, ?)", rows)

    def _remove(self, task_id: str) -> None:
        """One copy of the task leaves the table: the earliest, as in MemoryJournal."""
        self.db.execute("DELETE FROM tasks WHERE pos = (SELECT pos FROM tasks WHERE id = ? ORDER BY pos LIMIT 1)", (task_id,))


def read_history(path: str | os.PathLike) -> tuple[list[str], list[tuple[str, str, list[str]]]]:
    """A journal's history, read-only: the ids of the tasks done (in order, at most
    :data:`HISTORY_KEEP`) and the moves taken back as (move id, destination, task ids)."""
    try:
        db = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
        try:
            done = [i for (i,) in db.execute("SELECT id FROM done_log ORDER BY n")]
            back = [(m, d, json.loads(ids)) for m, d, ids in db.execute("SELECT move_id, dest, ids FROM taken_back_log ORDER BY n")]
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: {exc}") from None
    return done, back
