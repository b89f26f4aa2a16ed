"""Edge cases that mutation testing (TESTING.md, "Mutation testing") showed no other test
pinned down, in the journal (``daemon/core/journal.py``) and the records a board writes to
it, a board rebuilt from it (``TaskBoard.restore``), the queue's runs
(``daemon/core/tasks.py``), the wire's bounds (``daemon/wire.py``), wave ids
(``daemon/core/waves.py``) and the echo wave (``daemon/core/echo.py``).

Pinned: the journal's write count, the order of tasks put at the front and at the back,
records for move ids the journal does not hold (no-ops, as SQLite's DELETE), the error
for a foreign record; the exact records of a submit and of a hand-off on both boards, and
none without journaling; what a restored board keeps (its options, the resent transfer's
source, the order in which it forgets move ids due at the same time); queue runs at their
limit and the head run's average; each bound of a frame at the limit and one past it, with
its exact error text; the widest start time a wave id may carry; and that a node the wave
has not reached has nothing to give up."""

from __future__ import annotations

import pytest

from daemon import wire
from daemon.core.echo import EchoWave as EchoKind
from daemon.core.journal import (
    Acked,
    Confirmed,
    Done,
    Dropped,
    JournalState,
    Leave,
    MemoryJournal,
    Put,
    Seen,
    TakenBack,
)
from daemon.core.messages import MAX_TASKS, MAX_TEXT, MAX_WAVE_TAGS
from daemon.core.tasks import Task, TaskBoard, Transfer, _Queue
from daemon.core.waves import NOTHING, wave_started
from daemon.sim.drive import StepWave
from daemon.wire import WireError


def EchoWave(me, neighbours, wave):
    """One node's echo instance driven event by event, each returning its Step."""
    return StepWave(EchoKind, me, wave, neighbours=neighbours)



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


# --- a board's journal ------------------------------------------------------------------


def test_a_board_journals_nothing_unless_asked():
    board = TaskBoard("n1", 1)
    assert board.journal is None
    board.submit([task("a")], 0.0)
    assert board.journal is None and board.take_journal() == []


def test_a_submit_is_journaled_as_new_work_at_the_back_and_each_take_starts_afresh():
    board = TaskBoard("n1", 1, journaled=True)
    a, b, c = task("a"), task("b"), task("c")
    board.submit([a, b])
    assert board.take_journal() == [Put((a, b), False, True)]
    assert board.journal == [] and board.take_journal() == []
    board.submit([c])
    assert board.take_journal() == [Put((c,), False, True)]


def test_a_hand_off_is_journaled_record_by_record_on_both_boards():
    a, b, c, d, e, f = (task(i) for i in "abcdef")
    donor = TaskBoard("d", 1, journaled=True, grace=1.0, memory=10.0)
    dest = TaskBoard("r", 1, journaled=True, grace=1.0, memory=10.0)
    donor.submit([a, b, c], 0.0)  # a starts at 0: starting is not journaled
    assert donor.take_journal() == [Put((a, b, c), False, True)]
    transfer = donor.move_out("m1", "r", ["c", "a"], 0.0, 5.0)  # a runs: only c leaves
    assert donor.take_journal() == [Leave("m1", "r", 5.0, (c,))]
    assert dest.on_transfer(transfer, 1.0) is True
    assert dest.take_journal() == [Seen("m1", "d", True, 15.0), Put((c,), False, False)]
    assert donor.on_ack("m1", "r") is True and donor.take_journal() == [Acked("m1")]
    dest.on_forget("m1", "d")
    assert dest.take_journal() == [Confirmed("m1")]
    # an expired transfer is refused, and remembered as refused
    assert dest.on_transfer(Transfer("m3", "d", "r", (f,), 0.5), 2.0) is False
    assert dest.take_journal() == [Done("c"), Seen("m3", "d", False, 10.5)]
    dest.advance(16.0)  # both ids forgotten, the earliest first
    assert dest.take_journal() == [Dropped("m3"), Dropped("m1")]
    # two moves taken back together: journaled last first, as each goes to the front
    donor.submit([d, e])
    donor.move_out("m2", "x", ["d"], 1.0, 2.0)
    donor.move_out("m4", "y", ["e"], 1.0, 2.0)
    assert donor.take_journal() == [Put((d, e), False, True), Done("a"), Leave("m2", "x", 2.0, (d,)),
                                    Leave("m4", "y", 2.0, (e,))]
    assert donor.take_back_expired(3.5) == ["m2", "m4"]
    assert donor.take_journal() == [Done("b"), TakenBack("m4"), TakenBack("m2")]
    assert [t.id for t in donor.queued] == ["e"] and [t.id for t, _ in donor.running.values()] == ["d"]


# --- TaskBoard.restore -----------------------------------------------------------------


def test_a_restored_board_keeps_its_grace_and_memory():
    board = TaskBoard.restore("n1", 2, JournalState(), 0.0, grace=2.5, memory=30.0)
    assert (board.grace, board.memory) == (2.5, 30.0)


def test_a_restored_board_resends_its_leaving_moves_at_once_from_itself():
    t = task("a", 3.0)
    state = JournalState(leaving={"m1": ("n2", 5.0, (t,))})
    board = TaskBoard.restore("n1", 1, state, 1.0)
    assert board.transfers_to_resend(1.0, 1e9) == [Transfer("m1", "n1", "n2", (t,), 5.0)]


def test_a_restored_board_forgets_equal_time_move_ids_in_journal_order():
    # not in alphabetical order, and both forgotten after the same time
    state = JournalState(seen={"m2": ("n2", True, True, 5.0), "m1": ("n3", False, False, 5.0)})
    board = TaskBoard.restore("n1", 1, state, 0.0)
    assert board.unconfirmed() == [("m2", "n2")]
    board.advance(6.0)
    assert board.take_journal() == [Dropped("m2"), Dropped("m1")]
    assert board.remembered == 0 and board.unconfirmed() == []


# --- the queue's runs ---------------------------------------------------------------------


def test_a_queue_with_exactly_limit_runs_gives_every_run_exactly():
    q = _Queue()
    q.extend([task(i, 0.1) for i in "abc"] + [task("d", 0.2)])
    assert q.runs(2) == [[0.1, 3], [0.2, 1]]  # two runs, limit two: no average (0.3 / 3 != 0.1 in floats)
    assert q.runs(1) == [[0.125, 4]]


def test_the_head_run_averages_what_the_exact_tail_runs_leave():
    q = _Queue()
    q.extend([task("a", 1.0), task("b", 2.0), task("c", 3.0), task("d", 3.0)])
    assert q.runs(3) == [[1.0, 1], [2.0, 1], [3.0, 2]]
    assert q.runs(2) == [[1.5, 2], [3.0, 2]]  # 9 s of work, less 2 x 3 s in the tail, over 2 tasks


# --- wire: length limits, at the limit and one past it -----------------------------------


def test_a_text_field_may_hold_max_text_characters_and_no_more():
    assert MAX_TEXT == 256
    ok = wire.decode(wire.encode("submit", 0, tasks=1, cost=1.0, label="x" * MAX_TEXT))
    assert ok["label"] == "x" * 256
    with pytest.raises(WireError, match=r"^submit: field 'label' is longer than 256 characters$"):
        wire.decode(wire.encode("submit", 0, tasks=1, cost=1.0, label="x" * (MAX_TEXT + 1)))


def test_a_list_field_may_hold_its_limit_of_items_and_no_more():
    assert MAX_WAVE_TAGS == 4096
    ok = wire.decode(wire.encode("forget", 0, move_id="m", waves=["w"] * MAX_WAVE_TAGS))
    assert len(ok["waves"]) == 4096
    with pytest.raises(WireError, match=r"^forget: field 'waves' has 4097 items, more than 4096$"):
        wire.decode(wire.encode("forget", 0, move_id="m", waves=["w"] * (MAX_WAVE_TAGS + 1)))
    # another list, another limit: the task ids a submit answers with
    assert len(wire.decode(wire.encode("submit.ok", 0, ids=[0] * MAX_TASKS))["ids"]) == 100_000
    with pytest.raises(WireError, match=r"^submit\.ok: field 'ids' has 100001 items, more than 100000$"):
        wire.decode(wire.encode("submit.ok", 0, ids=[0] * (MAX_TASKS + 1)))


def test_a_bytes_field_may_hold_max_text_bytes_and_no_more():
    def finn(report):  # a Finn message: its report travels in the wave frame (no finn.start carries one now)
        return wire.encode("wave", 0, wave="w", msg="finn", body=[[], []], params={"tasks": 1, "cost": 1.0},
                           budget=None, report=report)

    ok = wire.decode(finn(b"r" * MAX_TEXT))
    assert ok["report"] == b"r" * 256
    with pytest.raises(WireError, match=r"^finn: field 'report' is longer than 256 bytes$"):
        wire.decode(finn(b"r" * (MAX_TEXT + 1)))


def test_a_task_count_is_0_to_max_tasks_in_every_field_that_carries_one():
    def submit(tasks):
        return wire.decode(wire.encode("submit", 0, tasks=tasks, cost=1.0, label="l"))

    def move(count):
        return wire.decode(wire.encode("move", 0, move_id="m", dest="d", tasks=[], count=count))

    assert submit(0)["tasks"] == 0 and submit(MAX_TASKS)["tasks"] == 100_000
    assert move(0)["count"] == 0 and move(MAX_TASKS)["count"] == 100_000
    with pytest.raises(WireError, match=r"^submit: field 'tasks' must be 0\.\.100000, got 100001$"):
        submit(MAX_TASKS + 1)
    with pytest.raises(WireError, match=r"^submit: field 'tasks' must be 0\.\.100000, got -1$"):
        submit(-1)
    with pytest.raises(WireError, match=r"^move: field 'count' must be 0\.\.100000, got 100001$"):
        move(MAX_TASKS + 1)
    with pytest.raises(WireError, match=r"^move: field 'count' must be 0\.\.100000, got -1$"):
        move(-1)


def test_a_number_with_a_range_is_above_its_low_end_and_at_most_its_high_end():
    def submit(cost):
        return wire.decode(wire.encode("submit", 0, tasks=1, cost=cost, label="l"))

    assert submit(86_400.0)["cost"] == 86_400.0 and submit(1e-9)["cost"] == 1e-9 and submit(5)["cost"] == 5
    for cost in (0.0, 86_400.5, -1.0):
        with pytest.raises(WireError, match=rf"^submit: field 'cost' must be in \(0, 86400\], got {cost!r}$"):
            submit(cost)
    budget = wire.encode("wave", 0, wave="w", msg="explore", body=[], params={"detail": True}, budget=-3600, report=b"")
    with pytest.raises(WireError, match=r"^explore: field 'budget' must be in \(-3600, 3600\], got -3600$"):
        wire.decode(budget)


def test_a_float_must_be_finite_even_where_its_range_would_admit_infinity():
    # expires' range is (0, inf]: only the finiteness check refuses inf there
    frame = wire.encode("transfer", 0, move_id="m", tasks=[], expires=float("inf"), waves=[])
    with pytest.raises(WireError, match=r"^transfer: field 'expires' must be finite, got inf$"):
        wire.decode(frame)
    with pytest.raises(WireError, match=r"^submit: field 'cost' must be finite, got nan$"):
        wire.decode(wire.encode("submit", 0, tasks=1, cost=float("nan"), label="l"))
    assert wire.decode(wire.encode("transfer", 0, move_id="m", tasks=[], expires=1e300, waves=[]))["expires"] == 1e300


# --- wave ids -----------------------------------------------------------------------------


def test_a_wave_id_carries_a_start_time_of_up_to_20_hex_digits():
    assert wave_started("echo-" + "f" * 20 + "-salt") == 16**20 - 1
    assert wave_started("echo-" + "f" * 21 + "-salt") is None
    assert wave_started("echo-" + "0" * 21 + "-salt") is None  # the width counts, not the value


# --- echo -----------------------------------------------------------------------------------


def test_a_node_the_wave_has_not_reached_has_sampled_nothing_and_gives_up_on_nothing():
    wave = EchoWave("a", ["b", "c"], "w")
    fresh = (False, False, False, None, None, 0, None)  # nothing sampled, missing, sent or decided
    assert (wave.joined, wave.finished, wave.sampled, wave.state, wave.missing, wave.sent, wave.result) == fresh
    assert wave.give_up() == NOTHING
    assert (wave.joined, wave.finished, wave.sampled, wave.state, wave.missing, wave.sent, wave.result) == fresh
