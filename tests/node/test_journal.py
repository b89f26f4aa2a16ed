"""The journal: SQLite (the daemon's) and memory (the simulator's) keep the same state,
and a node rebuilt from it has the board it had, running tasks back in the queue."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core.journal import Acked, Confirmed, Done, Dropped, Leave, MemoryJournal, Put, Seen, TakenBack
from daemon.core.node import NodeConfig, NodeCore
from daemon.core.tasks import Task
from daemon.journal import SqliteJournal
from tests.node.hostile import EPOCH, NOW, SEED, FrameMaker, Probe
from tests import wavemsgs as W


def state_key(state):
    return (Counter(t.id for t in state.queue), state.submitted, state.done,
            {k: (d, e, tuple(t.id for t in ts)) for k, (d, e, ts) in state.leaving.items()}, state.seen, state.told)


@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=40, deadline=None)
def test_sqlite_and_memory_journals_agree_and_a_restored_node_has_the_same_board(seed, tmp_path_factory):
    rng = random.Random(seed)
    p = Probe("subserviate")
    db = SqliteJournal(tmp_path_factory.mktemp("j") / "node.sqlite")
    original_apply = p.journal.apply

    def both(records):  # every Persist effect goes to both journals
        original_apply(records)
        db.write(records)

    p.journal.apply = both
    maker = FrameMaker(rng, SEED.names, NOW, clock=lambda: p.now, queued=lambda: [t.id for t in p.core.board.queued])
    p.send(b"op", "submit", tasks=6, cost=2.0, label="base")
    for _ in range(80):
        if rng.random() < 0.15:
            p.tick(rng.choice([0.3, 1.0, 6.0]))
        p.frame(*maker.frame())
    p.check()
    db.close()
    reopened = SqliteJournal(db.path)
    loaded = reopened.load()
    reopened.close()
    memory = p.journal.state()
    assert state_key(loaded) == state_key(memory)
    assert [t.id for t in loaded.queue] == [t.id for t in memory.queue]  # the same order too
    # a crash now: the node rebuilt from the journal
    board = p.core.board
    again = NodeCore(NodeConfig.of(SEED, "subserviate"), EPOCH + 1, p.now, recovered=loaded)
    assert (again.last_finn, again.last_round) == (p.core.last_finn, p.core.last_round)  # what its samples tell
    restored = again.board
    assert (restored.submitted, restored.done) == (board.submitted, board.done)
    assert Counter(t.id for t in restored.queued) == Counter(t.id for t in board.queued) + Counter(
        t.id for t, _ in board.running.values())
    assert restored.busy_slots() == 0  # nothing runs until the node's first advance
    before, after = board.sample(p.now, False), restored.sample(p.now, False)
    assert sorted(before["outgoing"]) == sorted(after["outgoing"])
    assert sorted(before["unconfirmed"]) == sorted(after["unconfirmed"])
    for move_id in memory.seen:
        assert restored.answered(move_id)


def test_a_fresh_journal_recovers_nothing(tmp_path):
    db = SqliteJournal(tmp_path / "n.sqlite")
    assert db.load() is None
    db.close()
    again = SqliteJournal(tmp_path / "n.sqlite")
    assert again.load() is not None  # opened once: a restart, even with nothing written
    again.close()


def test_history_logs_each_run_and_take_back_and_stays_bounded(tmp_path, monkeypatch):
    from daemon import journal as sqlite_journal
    from daemon.core import journal as rec

    monkeypatch.setattr(sqlite_journal, "HISTORY_KEEP", 5)
    monkeypatch.setattr(sqlite_journal, "HISTORY_TRIM", 4)
    db = SqliteJournal(tmp_path / "node.sqlite")
    a, b = Task("n:1:1", "", 1.0), Task("n:1:2", "", 1.0)
    db.write([rec.Put((a, b), False, True)])
    db.write([rec.Leave("m-1", "other", 10.0, (b,))])
    db.write([rec.TakenBack("m-1")])
    db.write([rec.Done(a.id), rec.Done(b.id)])
    assert sqlite_journal.read_history(db.path) == (["n:1:1", "n:1:2"], [("m-1", "other", ["n:1:2"])])
    for k in range(10):  # past HISTORY_KEEP: the oldest runs are trimmed
        db.write([rec.Put((Task(f"x:{k}", "", 1.0),), False, True), rec.Done(f"x:{k}")])
    done, _ = sqlite_journal.read_history(db.path)
    assert len(done) <= 5 + 4 and done[-1] == "x:9"
    db.close()


def test_a_late_ack_after_a_take_back_leaves_the_same_state_in_both_journals(tmp_path):
    """Take-back, then the destination's late ACK: the donor journals Leave and Acked again
    for the tasks still queued (daemon/core/tasks.py ``on_ack``). Both journals replay it to
    the board's queue, and a node restored from either does not run those tasks."""
    from daemon.core import journal as rec
    from daemon.core.journal import MemoryJournal
    from daemon.core.tasks import TaskBoard

    board = TaskBoard("a", 1, journaled=True)
    memory, db = MemoryJournal(), SqliteJournal(tmp_path / "a.sqlite")

    def persist():
        records = board.take_journal()
        memory.apply(records)
        db.write(records)
        return records

    board.submit([Task(f"a:1:{k}", "", 100.0) for k in range(4)], now=0.0)  # a:1:0 runs, 3 queued
    board.move_out("m-1", "b", ["a:1:2", "a:1:3"], 0.0, 5.0)
    persist()
    assert board.take_back_expired(6.5) == ["m-1"]
    persist()
    assert board.on_ack("m-1", "b", 7.0) is True
    assert [type(r) for r in persist()] == [rec.Leave, rec.Acked]
    assert [t.id for t in board.queued] == ["a:1:1"] and board.leaving == []
    assert board.on_ack("m-1", "b", 7.1) is False  # a repeat: nothing more to take
    assert persist() == []
    db.close()
    reopened = SqliteJournal(tmp_path / "a.sqlite")
    loaded = reopened.load()
    reopened.close()
    for state in (memory.state(), loaded):
        assert [t.id for t in state.queue] == ["a:1:0", "a:1:1"] and state.leaving == {}
    assert state_key(loaded) == state_key(memory.state())


def test_a_restarted_node_tells_the_finn_wave_and_round_it_told_before(tmp_path):
    """``Told`` (daemon/core/journal.py): the last Finn wave decided and the last round
    a node moved tasks in survive a crash, through SQLite, in the transaction of the
    step that changed them."""
    from daemon.core import messages as m
    from daemon.core.node import Persist
    from daemon.core.waves import new_wave_id

    db = SqliteJournal(tmp_path / "root.sqlite")
    core = NodeCore(NodeConfig.of(SEED, "root"), EPOCH, NOW)
    finn, rnd = new_wave_id("f", int(NOW * 1e9), "a"), new_wave_id("m", int(NOW * 1e9), "b")
    effects = core.handle(b"op", 0, W.FinnStart(finn, 6, 100.0, b"op"), NOW)  # 4 run, 2 queue
    effects += core.handle(b"op", 0, m.Move(f"{rnd}-0", "affixed", [], 2), NOW + 0.5)
    persists = [e for e in effects if type(e) is Persist]
    assert len(persists) == 2, effects  # one transaction per step: the Told rides with its Put, its Leave
    for e in persists:
        db.write(e.records)
    db.close()
    reopened = SqliteJournal(db.path)
    again = NodeCore(NodeConfig.of(SEED, "root"), EPOCH + 1, NOW + 1, recovered=reopened.load())
    reopened.close()
    assert again.last_finn == [finn, NOW, 6, 2] == core.last_finn
    assert again.last_round == [rnd, NOW + 0.5, 1, 2, 0, 0] == core.last_round


def task(i, cost=1.0):
    return Task(i, "test", float(cost))


def queue_ids(j: MemoryJournal) -> list[str]:
    return [t.id for t in j.state().queue]


# --- MemoryJournal ---------------------------------------------------------------------


def test_a_journal_counts_one_write_per_apply_starting_from_none():
    j = MemoryJournal()
    assert j.writes == 0
    j.apply([Put((task("a"),), False, True), Done("a")])  # two records, one write
    assert j.writes == 1
    j.apply([])  # an empty Persist is still one write
    assert j.writes == 2


def test_tasks_put_at_the_front_go_before_the_queue_in_their_own_order():
    j = MemoryJournal()
    j.apply([Put((task("x"),), False, True)])
    j.apply([Put((task("y"), task("z")), True, False)])
    assert queue_ids(j) == ["y", "z", "x"]
    j.apply([Put((task("w"),), True, False), Put((task("v"),), False, False)])
    assert queue_ids(j) == ["w", "y", "z", "x", "v"]
    assert j.state().submitted == 1  # only the first Put was new work


def test_a_move_taken_back_puts_its_tasks_before_the_queue():
    j = MemoryJournal()
    j.apply([Put((task("a"), task("b"), task("c")), False, True)])
    j.apply([Leave("m", "n2", 5.0, (task("b"), task("c")))])
    assert queue_ids(j) == ["a"]
    j.apply([TakenBack("m")])
    assert queue_ids(j) == ["b", "c", "a"] and j.state().leaving == {}


def test_a_task_with_two_copies_loses_its_earliest_first_in_both_journals(tmp_path):
    """A task id queued twice (a copy put back at the front while the other still waits,
    say): Done and Leave remove the earliest copy, in the memory journal as in SQLite."""
    from daemon.journal import SqliteJournal

    records = [
        [Put((task("a"), task("b"), task("a", 2.0)), False, True)],
        [Put((task("a", 3.0),), True, False)],  # a third copy, now the earliest
        [Done("a")],
        [Leave("m", "n2", 5.0, (task("a"),))],
        [Done("zz")],  # no copy: nothing happens
    ]
    memory, db = MemoryJournal(), SqliteJournal(tmp_path / "j.sqlite")
    try:
        for batch in records[:3]:
            memory.apply(batch)
            db.write(batch)
        assert [(t.id, t.cost) for t in memory.state().queue] == [("a", 1.0), ("b", 1.0), ("a", 2.0)]
        for batch in records[3:]:
            memory.apply(batch)
            db.write(batch)
        assert [(t.id, t.cost) for t in memory.state().queue] == [("b", 1.0), ("a", 2.0)]
    finally:
        db.close()
    reopened = SqliteJournal(tmp_path / "j.sqlite")  # as a restarted node reads it
    try:
        assert [(t.id, t.cost) for t in reopened.load().queue] == [("b", 1.0), ("a", 2.0)]
    finally:
        reopened.close()


def test_records_for_move_ids_the_journal_does_not_hold_change_nothing():
    j = MemoryJournal()
    j.apply([Put((task("a"),), False, True), Seen("s", "n3", True, 9.0)])
    before = j.state()
    # like SQLite's DELETE of a missing row (daemon/journal.py): no error, no change
    j.apply([Acked("nope")])
    j.apply([TakenBack("nope")])
    j.apply([Dropped("nope")])
    j.apply([Confirmed("nope")])
    assert j.state() == before
    assert j.writes == 5


def test_a_journal_refuses_a_record_of_another_kind_by_name():
    j = MemoryJournal()
    with pytest.raises(TypeError, match=r"^not a journal record: \('Put', 1\)$"):
        j.apply([("Put", 1)])
