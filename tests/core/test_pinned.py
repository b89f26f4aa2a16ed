"""Edge cases of the core that mutation testing (``make mutation``, TESTING.md) showed no
other test pinned down: boundaries (``<`` against ``<=``), defaults, exact error texts,
tie orders, and the seed policy's plan against a plain re-reading of its rule."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples

from daemon import wire
from daemon.wire import WireError
from daemon.core.echo import EchoWave as EchoKind
from daemon.core.echo import Explore
from daemon.core.finn import FinnSets
from daemon.core.finn import FinnWave as FinnKind
from daemon.core.plan import (
    SEED_BUSY_SHARE, Move, NodeLoad, apply_moves, imbalance_of, load_cv_of, loads_from_samples, lower_bound,
    plan_steps,
)
from daemon.core.tasks import Task, TaskBoard, Transfer, _Queue
from daemon.core.waves import WaveError
from daemon.sim.drive import StepWave


def EchoWave(me, neighbours, wave):
    """One node's echo instance driven event by event, each returning its Step."""
    return StepWave(EchoKind, me, wave, neighbours=neighbours)


def FinnWave(me, ins, outs, wave):
    """One node's Finn instance driven event by event, each returning its Step."""
    return StepWave(FinnKind, me, wave, parents=ins, children=outs)



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


# --- the waves' flags are booleans ------------------------------------------------------------


def test_wave_flags_are_booleans_before_anything_happens():
    echo = EchoWave("p", ["q"], "w")
    assert echo.initiator is False and echo.finished is False
    finn = FinnWave("p", [], ["q"], "w")
    assert finn.started is False and finn.decided is False


def test_finn_names_the_message_it_refuses():
    with pytest.raises(WaveError, match=r"^p: wave w: Explore from 'q' is not a Finn message$"):
        FinnWave("p", ["q"], [], "w").receive("q", Explore("w"))
    assert FinnWave("p", ["q"], ["z"], "w").receive("q", FinnSets("w", frozenset({"q"}), frozenset())).sends


# --- plans ----------------------------------------------------------------------------------


def load(name, cpus, running=(), queued=(), incoming=()):
    return NodeLoad(name, cpus, tuple(running), tuple(queued), tuple(incoming))


def test_measures_of_small_and_empty_work():
    assert lower_bound([load("a", 2), load("b", 1)]) == 0.0
    assert lower_bound([]) == 0.0
    assert imbalance_of([0.5, 0.0], [1, 1]) == 2.0
    assert imbalance_of([0.0, 0.0], [1, 1]) == 1.0
    assert load_cv_of([0.5, 0.0], [1, 1]) == 1.0
    assert load_cv_of([0.0, 0.0], [1, 1]) == 0.0
    assert load_cv_of([], []) == 0.0


def test_errors_name_the_node_and_the_field():
    with pytest.raises(ValueError, match=r"^sample of node \?: missing field 'unconfirmed'$"):
        loads_from_samples([{}])
    with pytest.raises(ValueError, match=r"^sample of node a: missing field 'outgoing'$"):
        loads_from_samples([{"name": "a", "unconfirmed": []}])
    loads = [load("a", 1, queued=[("x", 1.0)]), load("b", 1)]
    with pytest.raises(ValueError, match=r"^move a -> c: unknown node$"):
        apply_moves(loads, [Move("a", "c", ("x",))])
    with pytest.raises(ValueError, match=r"^move c -> a: unknown node$"):
        apply_moves(loads, [Move("c", "a", ("x",))])
    with pytest.raises(ValueError, match=r"^move b -> a: task x is not queued at b$"):
        apply_moves(loads, [Move("b", "a", ("x",))])
    with pytest.raises(ValueError, match=r"^unknown balancing policy 'fair': choose one of heap, seed, none$"):
        plan_steps(loads, "fair")
    with pytest.raises(ValueError, match=r"^node b appears twice in the loads$"):
        plan_steps([load("a", 1), load("b", 1), load("b", 2)])


def test_the_default_policy_is_heap():
    loads = [load("a", 1, running=[1.0], queued=[(f"t{k}", 1.0) for k in range(6)]), load("b", 2), load("c", 1)]
    assert plan_steps(loads) == plan_steps(loads, "heap") != []


def seed_rule(loads):
    """The seed policy read from daemon/core/plan.py's module text, as plainly as it
    reads: in node order, each node holding tasks >= 75% of its cpus and a queued task
    gives its last queued task to the node with the most free cpus (> 0; the lowest
    index on ties; not itself); counts change after each move."""
    tasks = [len(n.running) + len(n.queued) + len(n.incoming) for n in loads]
    steps = []
    for i, node in enumerate(loads):
        if not node.queued or tasks[i] < SEED_BUSY_SHARE * node.cpus:
            continue
        free = [(n.cpus - tasks[k], -k) for k, n in enumerate(loads) if k != i]
        if not free:
            continue
        most, minus_k = max(free)
        if most <= 0:
            continue
        j = -minus_k
        steps.append((node.name, loads[j].name, node.queued[-1][0]))
        tasks[i] -= 1
        tasks[j] += 1
    return steps


loads_strategy = st.lists(
    st.tuples(st.integers(1, 6), st.integers(0, 6), st.integers(0, 8), st.integers(0, 2)),
    min_size=1, max_size=8,
).map(lambda rows: [
    load(f"n{k}", cpus, running=[1.0] * min(run, cpus), queued=[(f"n{k}q{m}", 1.0) for m in range(queued)],
         incoming=[1.0] * incoming)
    for k, (cpus, run, queued, incoming) in enumerate(rows)
])


@settings(max_examples=examples(300))
@given(loads_strategy)
def test_the_seed_policy_follows_its_rule(loads):
    assert plan_steps(loads, "seed") == seed_rule(loads)


def test_the_seed_policy_gives_to_a_node_with_one_free_cpu():
    loads = [load("a", 2, running=[1.0, 1.0], queued=[("x", 1.0)]), load("b", 2, running=[1.0])]
    assert plan_steps(loads, "seed") == [("a", "b", "x")]


# --- wire: entry streams past the frame size ---------------------------------------------------


def test_an_entry_stream_larger_than_a_frame_is_refused():
    big = wire.pack_entries([("n", None, {"pad": "x" * (wire.MAX_FRAME // 2)})] * 2)
    assert len(big) > wire.MAX_FRAME
    with pytest.raises(WireError, match=r"^echo: entries are not a msgpack stream: BufferFull$"):
        wire.unpack_entries(big)


def test_a_bad_stream_names_msgpack_s_error():
    with pytest.raises(WireError, match=r"^echo: entries are not a msgpack stream: FormatError$"):
        wire.unpack_entries(b"\xc1")



def heap_rule(loads):
    """The heap policy's loop without heaps (daemon/core/plan.py's module text): take
    the node whose schedule ends last (lowest index on ties); if its last placed task is
    a queued one and would complete more than half its cost earlier on the node free
    first (other than itself; lowest index on ties), move it there (not movable again)
    and reconsider both; else retire the donor until a move involves it."""
    from daemon.core.plan import _Schedule

    schedules = [_Schedule(n) for n in loads]
    steps = []
    active = set(range(len(loads))) if len(loads) > 1 else set()
    while active:
        i = max(active, key=lambda k: (schedules[k].finish, -k))
        active.discard(i)
        donor = schedules[i]
        if not donor.placed or not donor.placed[-1][3]:
            continue
        task_id, cost, start, _ = donor.placed[-1]
        j = min((k for k in range(len(loads)) if k != i), key=lambda k: (schedules[k].earliest_free, k))
        if not schedules[j].earliest_free + cost < start + cost / 2:
            continue
        donor.pop_last()
        schedules[j].append(task_id, cost, movable=False)
        steps.append((loads[i].name, loads[j].name, task_id))
        active |= {i, j}
    return steps


heap_loads = st.lists(
    st.tuples(st.integers(1, 4), st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.0]), max_size=4),
              st.lists(st.sampled_from([0.25, 1.0, 2.0, 5.0]), max_size=10),
              st.lists(st.sampled_from([1.0, 2.0]), max_size=2)),
    min_size=1, max_size=6,
).map(lambda rows: [
    load(f"n{k}", cpus, running=run[:cpus], queued=[(f"n{k}q{m}", c) for m, c in enumerate(queued)], incoming=inc)
    for k, (cpus, run, queued, inc) in enumerate(rows)
])


@settings(max_examples=examples(300))
@given(heap_loads)
def test_the_heap_policy_follows_its_rule(loads):
    assert plan_steps(loads, "heap") == heap_rule(loads)
