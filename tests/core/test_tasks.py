"""The task board (daemon/core/tasks.py): slots in simulated time, and the exactly-once
hand-off between real boards over a hand-driven network (no mocks). The accounting rule
is checked on every state reached: exhaustively for one move (every interleaving of
delivery, duplication, loss, resend, expiry and forgetting), and by hypothesis over
random operation sequences on three boards."""

from __future__ import annotations

import copy
import json
from collections import deque

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import budget
from budget import examples

from daemon.core.journal import Acked, Confirmed, Done, Dropped, JournalState, Leave, Put, Seen, TakenBack
from daemon.core.tasks import MAX_TAKEN_BACK, MAX_TRANSFER_TASKS, QUEUE_RUNS, Task, TaskBoard, Transfer, _Queue, account


def tasks(*costs, prefix="t"):
    return [Task(f"{prefix}{k}", "test", float(c)) for k, c in enumerate(costs)]


def history(board: TaskBoard, times):
    """(time, running {id: started}, queued ids, done) after advancing to each time."""
    out = []
    for t in times:
        board.advance(t)
        out.append((t, {t.id: s for t, s in board.running.values()}, [q.id for q in board.queued], board.done))
    return out


# --- slots -----------------------------------------------------------------------------


def running_ids(board):
    return {t.id for t, _ in board.running.values()}


def started_at(board, task_id):
    return {t.id: at for t, at in board.running.values()}[task_id]


def test_a_freed_slot_is_refilled_when_it_frees_not_when_advanced():
    board = TaskBoard("a", 1)
    board.submit(tasks(1, 2, 0.5), now=0.0)
    started, finished = board.advance(10.0)
    assert [t.id for t in started] == ["t0", "t1", "t2"]
    assert [t.id for t in finished] == ["t0", "t1", "t2"]
    assert board.done == 3 and board.busy_slots() == 0
    # The same with a look half way: t1 started at 1 (when t0 ended), not at 2.
    board = TaskBoard("a", 1)
    board.submit(tasks(1, 2, 0.5), now=0.0)
    board.advance(2.0)
    assert started_at(board, "t1") == 1.0
    assert board.next_deadline() == 3.0


@settings(max_examples=examples(150))
@given(
    costs=st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5, 3.0]), max_size=12),
    cpus=st.integers(1, 3),
    looks=st.lists(st.sampled_from([0.25 * k for k in range(1, 48)]), max_size=12),
)
def test_how_often_advance_is_called_changes_nothing(costs, cpus, looks):
    coarse, fine = TaskBoard("a", cpus), TaskBoard("a", cpus)
    for board in (coarse, fine):
        board.submit(tasks(*costs), now=0.0)
    checkpoints = [3.0, 6.0, 12.0]
    every = sorted(set(looks) | set(checkpoints))
    fine_at = {h[0]: h for h in history(fine, every)}
    assert history(coarse, checkpoints) == [fine_at[t] for t in checkpoints]


def test_submitted_without_a_time_starts_at_the_next_time_given():
    board = TaskBoard("a", 2)
    board.submit(tasks(5), now=0.0)
    board.submit(tasks(1, prefix="late"))  # arrived at some time after 0: unknown
    assert board.next_deadline() == 0.0  # the driver should advance now
    started, _ = board.advance(4.0)
    assert [t.id for t in started] == ["t0", "late0"] and started_at(board, "late0") == 4.0
    assert board.next_deadline() == 5.0


def test_next_deadline_and_collecting_what_happened_inside_other_calls():
    board = TaskBoard("a", 1)
    assert board.next_deadline() is None
    board.submit(tasks(2), now=1.0)  # starts inside submit, reported by the next advance
    assert board.next_deadline() == 1.0
    started, finished = board.advance(1.0)
    assert [t.id for t in started] == ["t0"] and finished == []
    assert board.next_deadline() == 3.0


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="node a: cpus"):
        TaskBoard("a", 0)
    with pytest.raises(ValueError, match="node a: memory"):
        TaskBoard("a", 1, grace=5.0, memory=5.0)
    board = TaskBoard("a", 1)
    board.advance(5.0)
    with pytest.raises(ValueError, match="node a: time went back from 5.0 to 4.0"):
        board.advance(4.0)
    with pytest.raises(ValueError, match="node a: move m1 names this node"):
        board.move_out("m1", "a", [], 5.0, 10.0)


def test_sample_reports_every_field_as_plain_data():
    board = TaskBoard("a", 2)
    board.submit(tasks(4, 1, 3, 2), now=0.0)
    board.advance(1.0)  # t0 (0-4) and t1 (0-1) ran; t2 started at 1
    board.move_out("m1", "b", ["t3"], 1.0, 10.0)
    board.submit(tasks(1.5, prefix="q"), now=1.0)
    s = json.loads(json.dumps(board.sample(1.5)))  # as another process would see it
    assert s == {
        "name": "a", "cpus": 2, "running": 2, "queued": 1, "done": 1, "submitted": 5,
        "running_tasks": [["t0", 2.5], ["t2", 2.5]], "queued_tasks": [["q0", 1.5]], "queue_runs": [[1.5, 1]],
        "outgoing": [["m1", "b", 1, 2.0]], "unconfirmed": [], "work": 6.5, "load": 1.5,
    }
    brief = board.sample(1.5, detail=False)
    assert brief == {k: v for k, v in board.sample(1.5).items() if k not in ("running_tasks", "queued_tasks", "queue_runs")}
    assert "queued_tasks" not in board.sample(1.5, limit=0) and board.sample(1.5, limit=1)["queued_tasks"] == [("q0", 1.5)]


# --- the hand-off, step by step ----------------------------------------------------------


def pair(grace=1.0, memory=5.0):
    """Donor a (one slot busy for 100 s, three tasks queued) and destination b (busy too)."""
    a, b = TaskBoard("a", 1, grace=grace, memory=memory), TaskBoard("b", 1, grace=grace, memory=memory)
    a.submit(tasks(100, 1, 2, 3), now=0.0)
    b.submit(tasks(100, prefix="b"), now=0.0)
    return a, b


def test_move_out_takes_only_queued_tasks_in_the_order_asked():
    a, _ = pair()
    tr = a.move_out("m1", "b", ["t3", "t0", "nope", "t1"], 0.0, 2.0)  # t0 runs, "nope" is unknown
    assert tr == Transfer("m1", "a", "b", (a_task("t3", 3), a_task("t1", 1)), 2.0)
    assert [t.id for t in a.queued] == ["t2"] and "t0" in running_ids(a)
    assert a.move_out("m1", "b", ["t2"], 0.0, 2.0) is tr  # the same move again: same transfer
    assert a.move_out("m2", "b", ["t0", "t1"], 0.0, 2.0) is None  # nothing left to take


def test_moves_from_anywhere_in_a_long_queue_keep_it_in_order():
    board = TaskBoard("a", 1)
    board.submit(tasks(*([1.0] * 1000)), now=0.0)  # t0 runs, t1..t999 queued
    for k in range(10):  # the heap plan's pattern: each receiver gets every tenth task
        board.move_out(f"m{k}", f"r{k}", [f"t{i}" for i in range(999 - k, 500, -10)], 0.0, 5.0)
    assert [t.id for t in board.queued] == [f"t{i}" for i in range(1, 501)]  # t501..t999 left
    s = board.sample(0.0)
    assert s["queued"] == 500 and s["work"] == 501.0
    assert s["queued_tasks"] == [(f"t{i}", 1.0) for i in range(1, 501)]
    assert sum(o[2] for o in s["outgoing"]) == 499 and sum(o[3] for o in s["outgoing"]) == 499.0
    assert s["queue_runs"] == [[1.0, 500]]


def test_move_out_tail_takes_the_last_tasks_in_order_and_keeps_the_runs():
    board = TaskBoard("a", 1)
    board.submit(tasks(9, *([1.0] * 5), *([2.0] * 3)), now=0.0)  # t0 runs; 5 of 1 s, 3 of 2 s queued
    assert board.sample(0.0)["queue_runs"] == [[1.0, 5], [2.0, 3]]
    tr = board.move_out_tail("m1", "b", 4, 0.0, 5.0)
    assert [t.id for t in tr.tasks] == ["t5", "t6", "t7", "t8"]
    assert board.move_out_tail("m1", "b", 2, 0.0, 5.0) is tr  # the same move again
    s = board.sample(0.0)
    assert s["queue_runs"] == [[1.0, 4]] and s["queued"] == 4 and s["work"] == 13.0
    assert s["outgoing"] == [["m1", "b", 4, 7.0]]
    assert board.move_out_tail("m2", "b", 0, 0.0, 5.0) is None
    board.move_out("m3", "b", ["t2"], 0.0, 5.0)  # by id, from the middle: runs rebuilt
    board.submit(tasks(3.0, prefix="x"), now=0.0)
    assert board.sample(0.0)["queue_runs"] == [[1.0, 3], [3.0, 1]]
    assert [t.id for t in board.move_out_tail("m4", "b", 100, 0.0, 5.0).tasks] == ["t1", "t3", "t4", "x0"]
    assert board.sample(0.0)["queue_runs"] == [] and board.is_idle() is False


def test_move_out_tail_is_bounded_by_one_transfer():
    board = TaskBoard("a", 1)
    board.submit([Task(f"t{i}", "x", 1.0) for i in range(MAX_TRANSFER_TASKS + 10)], now=0.0)
    assert len(board.move_out_tail("m1", "b", 10**9, 0.0, 5.0).tasks) == MAX_TRANSFER_TASKS
    assert len(board.queued) == 9  # t0 runs


def test_queue_runs_fold_the_head_into_one_run_of_its_average_cost():
    board = TaskBoard("a", 1)
    costs = [1.0, 3.0] * 40  # 80 runs of one task
    board.submit([Task(f"t{i}", "x", c) for i, c in enumerate(costs)], now=0.0)  # t0 runs
    runs = board.sample(0.0)["queue_runs"]
    assert len(runs) == QUEUE_RUNS
    assert runs[1:] == [[c, 1] for c in costs[-(QUEUE_RUNS - 1):]]
    head = runs[0]
    assert head[1] == 79 - (QUEUE_RUNS - 1) and abs(head[0] * head[1] - sum(costs[1:-(QUEUE_RUNS - 1)])) < 1e-9


def test_a_task_queued_twice_is_removed_once_per_move():
    # Only the two generals' case puts one task twice on a board: b took it, the ACK was
    # lost for good, a took it back, and b had meanwhile handed it back to a.
    board = TaskBoard("a", 1)
    twin = Task("twin", "test", 1.0)
    board.submit([Task("busy", "test", 10.0), twin, Task("x", "test", 1.0), twin], now=0.0)
    assert [t.id for t in board.move_out("m1", "b", ["twin"], 0.0, 5.0).tasks] == ["twin"]
    assert [t.id for t in board.queued] == ["twin", "x"]
    assert board.move_out("m2", "b", ["twin", "twin"], 0.0, 5.0).tasks == (twin,)
    assert [t.id for t in board.queued] == ["x"] and board.sample(0.0)["work"] == 11.0
    assert board.move_out("m3", "b", ["twin"], 0.0, 5.0) is None


def a_task(task_id, cost):
    return Task(task_id, "test", float(cost))


def test_transfer_ack_forget():
    a, b = pair()
    tr = a.move_out("m1", "b", ["t1", "t2"], 0.0, 2.0)
    assert b.on_transfer(tr, 0.5) is True
    assert [t.id for t in b.queued] == ["t1", "t2"] and b.sample(0.5)["unconfirmed"] == ["m1"]
    assert account([a.sample(0.5), b.sample(0.5)])["balanced"]  # ACK in flight
    assert b.on_transfer(tr, 0.6) is True  # a duplicate: ACK again, enqueue nothing
    assert len(b.queued) == 2
    assert a.on_ack("m1") is True and a.on_ack("m1") is False
    assert a.sample(0.7)["outgoing"] == []
    b.on_forget("m1")
    assert b.sample(0.8)["unconfirmed"] == []
    assert b.on_transfer(tr, 0.9) is True  # a very late copy still gets its ACK
    assert len(b.queued) == 2


def test_resend_until_acknowledged():
    a, _ = pair()
    a.move_out("m1", "b", ["t1"], 0.0, 2.0)
    a.move_out("m2", "b", ["t2"], 0.4, 2.4)
    assert a.transfers_to_resend(0.3, every=0.5) == []
    assert [t.move_id for t in a.transfers_to_resend(0.5, every=0.5)] == ["m1"]
    assert [t.move_id for t in a.transfers_to_resend(1.0, every=0.5)] == ["m1", "m2"]
    a.on_ack("m1")
    assert [t.move_id for t in a.transfers_to_resend(1.5, every=0.5)] == ["m2"]


def test_a_stale_transfer_is_refused_and_taken_back_to_the_front():
    a, b = pair(grace=1.0)
    tr = a.move_out("m1", "b", ["t1", "t2"], 0.0, 2.0)
    assert a.take_back_expired(3.0) == []  # expires 2 + grace 1: not yet
    assert b.on_transfer(tr, 2.5) is False  # the destination was away until after expiry
    assert b.on_transfer(tr, 2.6) is False  # remembered as refused
    assert len(b.queued) == 0
    assert a.take_back_expired(3.5) == ["m1"]
    assert [t.id for t in a.queued] == ["t1", "t2", "t3"]  # back in front, in order
    assert account([a.sample(3.5), b.sample(3.5)])["balanced"]


def test_a_transfer_for_another_node_is_refused():
    a, _ = pair()
    tr = a.move_out("m1", "c", ["t1"], 0.0, 2.0)
    assert TaskBoard("b", 1).on_transfer(tr, 0.1) is False


def test_memory_of_move_ids_is_bounded():
    a, b = TaskBoard("a", 1, grace=1.0, memory=5.0), TaskBoard("b", 1, grace=1.0, memory=5.0)
    sizes = []
    for k in range(600):
        now = float(k)
        a.submit([Task(f"x{k}", "test", 100.0)], now=now)
        tr = a.move_out(f"m{k}", "b", [f"x{k}"], now, now + 2.0)
        if tr is not None:
            b.on_transfer(tr, now)
        a.take_back_expired(now)  # FORGET and ACK are all lost: nothing is ever confirmed
        b.advance(now)
        sizes.append((b.remembered, len(b.sample(now)["unconfirmed"])))
    # ids answered in the last expires + memory = 7 s (each bound on its own: a tuple
    # comparison would let (8, 500) through)
    assert max(remembered for remembered, _ in sizes) <= 8
    assert max(unconfirmed for _, unconfirmed in sizes) <= 8


def test_a_late_ack_reclaims_only_from_the_destination_only_what_is_still_queued():
    a, _ = pair()  # t0 runs for 100 s; t1, t2, t3 queued
    a.move_out("m1", "b", ["t1", "t2"], 0.0, 2.0)
    assert a.take_back_expired(3.5) == ["m1"] and [t.id for t in a.queued] == ["t1", "t2", "t3"]
    assert a.on_ack("m1", "c", 4.0) is False  # not the destination: nothing leaves
    assert [t.id for t in a.queued] == ["t1", "t2", "t3"]
    assert a.on_ack("m1", "b") is True and [t.id for t in a.queued] == ["t3"]  # no time: the board's own
    assert a.on_ack("m1", "b", 4.1) is False  # once
    # a task the donor has started meanwhile stays: it runs at both (the documented case)
    c = TaskBoard("c", 1)
    c.submit(tasks(4, 1, 1), now=0.0)  # t0 runs until 4
    c.move_out("m2", "b", ["t1", "t2"], 0.0, 2.0)
    c.take_back_expired(3.5)  # back at 3.5, queued behind t0
    assert c.on_ack("m2", "b", 4.2) is True  # t1 started at 4, when t0's slot freed
    assert [t.id for t in c.queued] == [] and [(t.id, at) for t, at in c.running.values()] == [("t1", 4.0)]


def test_only_the_latest_moves_taken_back_can_be_reclaimed():
    a = TaskBoard("a", 1)
    a.submit(tasks(1000, *([1] * (MAX_TAKEN_BACK + 1))), now=0.0)
    for k in range(1, MAX_TAKEN_BACK + 2):
        a.move_out(f"m{k}", "b", [f"t{k}"], 0.0, 2.0)
    a.take_back_expired(3.5)
    assert a.on_ack("m1", "b", 4.0) is False  # the oldest is forgotten
    assert a.on_ack("m2", "b", 4.0) is True and "t2" not in [t.id for t in a.queued]


# --- every interleaving of one move --------------------------------------------------------

MAX_IN_FLIGHT = 3
LAST_TICK = 9  # expires 2, take-back after 3, b forgets after 7


def explore_one_move():
    """Breadth-first over every state of one move of two tasks from a to b, through a
    network that may deliver, duplicate or lose any message; the donor resends and takes
    back; time ticks. Yields each state reached once."""
    a, b = pair(grace=1.0, memory=5.0)
    tr = a.move_out("m1", "b", ["t1", "t2"], 0.0, 2.0)
    start = (0, (("transfer", tr),), a, b, {"accepted": False, "taken_back": False, "reclaimed": 0})
    seen, todo = set(), deque([start])
    while todo:
        state = todo.popleft()
        t, net, a, b, flags = state
        key = (t, tuple(sorted(map(repr, net))), repr(a.sample(t)), repr(b.sample(t)), tuple(sorted(flags.items())))
        if key in seen:
            continue
        seen.add(key)
        yield state

        def successor(change):
            a2, b2, f2 = copy.deepcopy((a, b, flags))
            result = change(a2, b2, f2)
            todo.append(result)

        for i, msg in enumerate(net):
            rest = net[:i] + net[i + 1:]
            successor(lambda a2, b2, f2, msg=msg, rest=rest: (t, rest + deliver(msg, a2, b2, f2, t), a2, b2, f2))
            successor(lambda a2, b2, f2, rest=rest: (t, rest, a2, b2, f2))  # lost
            if len(net) < MAX_IN_FLIGHT:
                successor(lambda a2, b2, f2, msg=msg: (t, net + (msg,), a2, b2, f2))  # duplicated
        if len(net) < MAX_IN_FLIGHT:
            successor(lambda a2, b2, f2: (t, net + tuple(("transfer", x) for x in a2.transfers_to_resend(t, 0.0)), a2, b2, f2))
        if t < LAST_TICK:
            successor(lambda a2, b2, f2: tick(t + 1, net, a2, b2, f2))


def deliver(msg, a, b, flags, t):
    kind, body = msg
    if kind == "transfer":
        accepted = b.on_transfer(body, t)
        flags["accepted"] |= accepted
        return (("ack", (body.move_id, accepted)),)
    if kind == "ack":
        move_id, accepted = body
        queued = len(a.queued)
        if accepted and a.on_ack(move_id, "b", t):
            if flags["taken_back"]:  # a late ACK: what is still queued leaves again
                flags["reclaimed"] = queued - len(a.queued)
            return (("forget", move_id),)
        return ()
    b.on_forget(body)
    return ()


def tick(t, net, a, b, flags):
    flags["taken_back"] |= bool(a.take_back_expired(t))
    a.advance(t)
    b.advance(t)
    return (t, net, a, b, flags)


def test_every_interleaving_of_one_move_keeps_the_count():
    states = 0
    reached = {"duplicate ack": False, "refused": False, "taken back": False, "twice": False, "forgotten": False,
               "reclaimed": False}
    for t, net, a, b, flags in explore_one_move():
        states += 1
        totals = account([a.sample(t), b.sample(t)])
        assert totals["submitted"] == 5
        if flags["accepted"] and flags["taken_back"] and not flags["reclaimed"]:
            # The two generals: b accepted, every ACK was lost until the deadline passed,
            # a took the tasks back. They are at both (never lost) — until a late ACK
            # reaches a, which takes out again the two it has not started (its slot is busy).
            assert totals["surplus"] == 2
            reached["twice"] = True
        elif flags["reclaimed"]:
            assert flags["reclaimed"] == 2 and totals["balanced"], (t, net, totals)
            reached["reclaimed"] = True
        else:
            assert totals["balanced"], (t, net, totals)
        b_has = [x.id for x in b.queued]
        assert b_has in ([], ["t1", "t2"])  # never enqueued twice
        reached["duplicate ack"] |= b_has != [] and sum(1 for m in net if m[0] == "ack") >= 2
        reached["refused"] |= any(m == ("ack", ("m1", False)) for m in net)
        reached["taken back"] |= flags["taken_back"] and not flags["accepted"]
        reached["forgotten"] |= b.remembered == 0 and flags["accepted"]
    assert states > 500
    assert all(reached.values()), reached


# --- random operation sequences on three boards ------------------------------------------

NODES = ("a", "b", "c")
op = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(NODES), st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=1, max_size=4)),
    st.tuples(st.just("tick"), st.sampled_from([0.25, 0.5, 1.0, 3.0])),
    st.tuples(st.just("move"), st.sampled_from(NODES), st.sampled_from(NODES), st.integers(0, 7)),
    st.tuples(st.just("move_tail"), st.sampled_from(NODES), st.sampled_from(NODES), st.integers(0, 4)),
    st.tuples(st.just("deliver"), st.integers(0, 7)),
    st.tuples(st.just("lose"), st.integers(0, 7)),
    st.tuples(st.just("duplicate"), st.integers(0, 7)),
    st.tuples(st.just("resend"), st.sampled_from(NODES)),
)


class Cluster:
    """Three boards, a network of messages in flight, and what the test remembers."""

    def __init__(self):
        self.boards = {n: TaskBoard(n, 1 + i % 2, grace=1.0, memory=4.0) for i, n in enumerate(NODES)}
        self.now = 0.0
        self.net: list[tuple] = []
        self.submitted: list[str] = []
        self.done: dict[str, list[str]] = {n: [] for n in NODES}
        self.moves = 0
        self.accepted: dict[str, int] = {}  # move id -> tasks, once the destination took them
        self.taken_back: set[str] = set()
        self.reclaimed: dict[str, int] = {}  # move id -> tasks a late ACK took out of its donor's queue again
        self.acked = self.refused = self.forgotten = 0  # how far the hand-offs got

    def run(self, operation):
        kind, *args = operation
        getattr(self, kind)(*args)

    def submit(self, node, costs):
        new = [Task(f"s{len(self.submitted) + k}", "test", c) for k, c in enumerate(costs)]
        self.submitted += [t.id for t in new]
        self.boards[node].submit(new, now=self.now)
        self.collect()

    def tick(self, dt):
        self.now += dt
        for name, board in self.boards.items():
            self.taken_back.update(board.take_back_expired(self.now))
        self.collect()

    def collect(self):
        for name, board in self.boards.items():
            before = running_ids(board)
            _, finished = board.advance(self.now)
            for task in finished:
                self.done[name].append(task.id)
            for task_id in before:  # running tasks never move: still here or done here
                assert task_id in running_ids(board) or task_id in self.done[name]

    def move(self, source, dest, pick):
        if source == dest:
            return
        board = self.boards[source]
        queued = [t.id for t in board.queued]
        ids = queued[pick % 3::2] + sorted(running_ids(board))[:1] + ["unknown"]
        self.moves += 1
        tr = board.move_out(f"m{self.moves}", dest, ids, self.now, self.now + 1.5)
        if tr is not None:
            assert {t.id for t in tr.tasks} <= set(queued)
            self.net.append(("transfer", tr))
        self.collect()

    def move_tail(self, source, dest, count):
        """A bulk plan's move: ``count`` tasks, the donor picks its tail."""
        if source == dest:
            return
        board = self.boards[source]
        queued = [t.id for t in board.queued]
        self.moves += 1
        tr = board.move_out_tail(f"m{self.moves}", dest, count, self.now, self.now + 1.5)
        if tr is not None:
            assert [t.id for t in tr.tasks] == queued[len(queued) - min(count, len(queued)):]
            self.net.append(("transfer", tr))
        else:
            assert count == 0 or not queued
        self.collect()

    def deliver(self, i):
        if not self.net:
            return
        kind, body = self.net.pop(i % len(self.net))
        if kind == "transfer":
            ok = self.boards[body.dest].on_transfer(body, self.now)
            if ok:
                self.accepted.setdefault(body.move_id, len(body.tasks))
            else:
                self.refused += 1
            self.net.append(("ack", (body.source, body.dest, body.move_id, ok)))
        elif kind == "ack":
            source, dest, move_id, ok = body
            donor = self.boards[source]
            queued = len(donor.queued)
            if ok and donor.on_ack(move_id, dest, self.now):
                self.acked += 1
                if move_id in self.taken_back:  # late: the tasks still queued leave again
                    self.reclaimed[move_id] = queued - len(donor.queued)
                self.net.append(("forget", (dest, move_id)))
        else:
            dest, move_id = body
            self.forgotten += 1
            self.boards[dest].on_forget(move_id)
        self.collect()

    def lose(self, i):
        if self.net:
            self.net.pop(i % len(self.net))

    def duplicate(self, i):
        if self.net and len(self.net) < 12:
            self.net.append(self.net[i % len(self.net)])

    def resend(self, node):
        for tr in self.boards[node].transfers_to_resend(self.now, 0.5):
            self.net.append(("transfer", tr))

    def check(self):
        boards = self.boards.values()
        samples = [b.sample(self.now) for b in boards]
        totals = account(samples)
        twice = {m: n - self.reclaimed.get(m, 0) for m, n in self.accepted.items() if m in self.taken_back}
        assert totals["surplus"] == sum(twice.values())  # only the two generals' case
        unconfirmed = {m for s in samples for m in s["unconfirmed"]}
        found = [i for ids in self.done.values() for i in ids]
        for board, s in zip(boards, samples):
            found += [t.id for t in board.queued] + [t.id for t, _ in board.running.values()]
            found += [t.id for tr in board.leaving if tr.move_id not in unconfirmed for t in tr.tasks]
            assert [[o[0], o[2]] for o in s["outgoing"]] == [[tr.move_id, len(tr.tasks)] for tr in board.leaving]
        assert set(found) == set(self.submitted)  # nothing lost, nothing invented
        if not sum(twice.values()):
            assert sorted(found) == sorted(self.submitted)  # and nothing twice
        assert [b.done for b in boards] == [len(d) for d in self.done.values()]
        for board, s in zip(boards, samples):  # kept beside the queue: must agree with it
            assert s["queued_tasks"] == [(t.id, t.cost) for t in board.queued]
            assert [c for c, n in s["queue_runs"] for _ in range(n)] == [t.cost for t in board.queued]
            listed = sum(r for _, r in s["running_tasks"]) + sum(c for _, c in s["queued_tasks"])
            assert abs(s["work"] - listed) < 1e-6


def test_random_operations_never_lose_a_task():
    """Long sequences (20 to 120 operations: a move, its delivery and the loss of its
    ACK, then a tick past the deadline, take several), and the run must reach every case
    the accounting rule distinguishes, as the exhaustive single-move test does."""
    # (a late ACK's reclaim is rare in random sequences: the exhaustive test above reaches it)
    reached = dict.fromkeys(("moved", "acked", "refused", "forgotten", "taken back", "twice"), 0)

    @settings(max_examples=examples(300, reach=True))
    @given(ops=st.lists(op, min_size=20, max_size=120))
    # One sequence through every case, run first in every profile: the random ones reach
    # them too, nearly always, but "nearly" made a flaky check (one CI run in dozens
    # drew no delivered FORGET).
    @example(ops=[("submit", "a", [2.0] * 8),
                  ("move", "a", "b", 0), ("deliver", 0), ("deliver", 0), ("deliver", 0),  # acked, forgotten
                  ("move", "a", "c", 0), ("deliver", 0), ("lose", 0), ("tick", 3.0),  # accepted, taken back
                  ("move", "a", "b", 0), ("tick", 3.0), ("deliver", 0)])  # taken back, then refused
    def run(ops):
        budget.count()
        cluster = Cluster()
        done_before = 0
        for operation in ops:
            cluster.run(operation)
            cluster.check()
            done = sum(b.done for b in cluster.boards.values())
            assert done >= done_before
            done_before = done
        reached["moved"] += bool(cluster.accepted)
        reached["acked"] += cluster.acked > 0
        reached["refused"] += cluster.refused > 0
        reached["forgotten"] += cluster.forgotten > 0
        reached["taken back"] += bool(cluster.taken_back)
        reached["twice"] += bool(set(cluster.accepted) & cluster.taken_back)

    run()
    assert all(reached.values()), reached


def task(i, cost=1.0):
    return Task(i, "test", float(cost))


# --- the task queue: copies of one id ------------------------------------------------------


def test_a_queue_counts_copies_of_an_id_one_by_one():
    a, b = task("a"), task("b", 2.0)
    q = _Queue()
    q.extend([a, b, a])  # the same task twice (it came back while a copy was queued)
    assert len(q) == 3
    assert q.take(["a"]) == [a] and len(q) == 2
    assert q.take(["a"]) == [a] and len(q) == 1
    assert q.take(["a"]) == []  # no copy left
    assert [t.id for t in q.tasks()] == ["b"] and q.pairs() == [("b", 2.0)] and q.ns == 2 * 10**9
    q.extend([a])  # a new copy after the removed ones were dropped: it is queued
    assert [t.id for t in q.tasks()] == ["b", "a"] and len(q) == 2
    assert q.popleft() == b and q.popleft() == a and len(q) == 0


def test_two_removed_copies_before_the_tail_are_dropped_one_by_one():
    a, b = task("a"), task("b")
    q = _Queue()
    q.extend([a, a, b])
    assert q.take(["a"]) == [a] and q.take(["a"]) == [a]  # both copies, neither at the tail
    assert len(q) == 1 and [t.id for t in q.tasks()] == ["b"]
    q.extend([a])  # a new copy is not mistaken for a removed one
    assert [t.id for t in q.tasks()] == ["b", "a"] and len(q) == 2
    assert q.popleft() == b and q.popleft() == a


def test_a_removed_head_is_skipped_and_one_copy_is_taken_once():
    a, b = task("a"), task("b")
    q = _Queue()
    q.extend([a, b])
    assert q.take(["a", "a"]) == [a]  # asked twice, one copy
    assert q.take(["a"]) == []
    assert q.popleft() == b


def test_later_submissions_queue_behind_earlier_ones():
    board = TaskBoard("a", 1)
    board.submit([task("r", 5)], now=0.0)
    board.submit([task("x")], now=0.0)
    board.submit([task("y")], now=0.0)
    assert [t.id for t in board.queued] == ["x", "y"]


# --- the task board: boundaries and defaults ------------------------------------------------


def test_grace_and_memory_defaults_and_checks():
    board = TaskBoard("a", 1)
    assert (board.grace, board.memory) == (1.0, 600.0)
    TaskBoard("a", 1, grace=0.0)
    TaskBoard("a", 1, grace=0.5, memory=0.6)
    with pytest.raises(ValueError, match=r"^node a: grace must be >= 0 seconds, got -1$"):
        TaskBoard("a", 1, grace=-1)
    with pytest.raises(ValueError, match=r"^node a: memory \(1 s\) must exceed grace \(1 s\)$"):
        TaskBoard("a", 1, grace=1, memory=1)


def test_take_back_waits_for_expires_plus_grace_exactly():
    board = TaskBoard("a", 1)  # default grace: 1 s
    board.submit([task("r", 100), task("q")], now=0.0)
    assert board.move_out("m", "b", ["q"], 0.0, 2.0) is not None
    assert board.take_back_expired(3.0) == []  # expires + grace: not yet
    assert board.take_back_expired(3.001) == ["m"]


def test_a_transfer_arriving_at_its_expiry_is_accepted_and_remembered_for_memory():
    board = TaskBoard("b", 1, grace=1.0, memory=5.0)
    tr = Transfer("m", "a", "b", (task("t"),), 2.0)
    assert board.on_transfer(tr, 2.0) is True
    board.advance(7.0)  # expires + memory: still remembered
    assert board.remembered == 1 and board.sample(7.0)["unconfirmed"] == ["m"]
    board.advance(7.001)
    assert board.remembered == 0 and board.sample(7.001)["unconfirmed"] == []
    late = TaskBoard("b", 1)
    assert late.on_transfer(tr, 2.001) is False


def test_default_memory_is_ten_minutes():
    board = TaskBoard("b", 1)
    board.on_transfer(Transfer("m", "a", "b", (task("t"),), 0.0), 0.0)
    board.advance(600.0)
    assert board.remembered == 1
    board.advance(600.5)
    assert board.remembered == 0


def test_tasks_submitted_without_a_time_start_when_the_board_next_hears_one():
    board = TaskBoard("a", 1)
    board.submit([task("r", 1)], now=0.0)  # runs 0..1
    board.advance(0.0)
    board.submit([task("x")])
    board.submit([task("y")])  # both without a time: not known to wait since 0
    assert board.next_deadline() == 1.0  # the slot is busy: the end of r
    board.advance(5.0)
    assert {t.id: at for t, at in board.running.values()}["x"] == 5.0  # started at the time given, not when r ended at 1


def test_next_deadline_is_now_for_fresh_tasks_with_a_free_slot():
    board = TaskBoard("a", 1)
    board.submit([task("x")])
    assert board.next_deadline() == board.clock == 0.0


def test_tasks_ending_together_finish_in_start_order():
    """Ids in the opposite order, so that only the start order can give the answer."""
    board = TaskBoard("a", 3)
    board.submit([task("b", 2), task("a", 2)], now=0.0)
    board.on_transfer(Transfer("m", "z", "a", (task("0c", 1),), 9.0), 1.0)  # starts at 1, ends at 2
    _, finished = board.advance(2.0)
    assert [t.id for t in finished] == ["b", "a", "0c"]


def test_is_idle():
    board = TaskBoard("a", 1)
    assert board.is_idle()
    board.submit([task("r", 1)], now=0.0)
    assert not board.is_idle()  # running, nothing queued
    board.advance(1.0)
    assert board.is_idle()
    board.submit([task("r", 1), task("q")], now=1.0)
    assert not board.is_idle()
    board.move_out("m", "b", ["q"], 1.0, 3.0)
    board.advance(2.0)
    assert not board.is_idle()  # nothing runs or waits, but a move is not acknowledged
    assert board.on_ack("m") and board.is_idle()
    other = TaskBoard("b", 1)
    other.on_transfer(Transfer("m", "a", "b", (task("q", 1),), 2.0), 0.0)
    other.advance(5.0)
    assert other.done == 1 and not other.is_idle()  # the move is still unconfirmed
    other.on_forget("m")
    assert other.is_idle()


def test_a_task_past_its_end_shows_no_time_left_until_advanced():
    board = TaskBoard("a", 1)
    board.submit([task("r", 1.5)], now=0.0)
    assert board.sample(1.0)["running_tasks"] == [("r", 0.5)]
    assert board.sample(9.0)["running_tasks"] == [("r", 0.0)]


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
