"""The bulk plan (daemon/core/plan.py, "Bulk plans") on small hand-worked cases that
mutation testing showed no other test pinned down: summaries read from samples (in-flight
work and counts, their defaults), the checks and error texts of ``plan_bulk``, the
policy names, the ``limit`` per (donor, receiver), and the heap plan's boundaries
(total work, quota 0 and 1, zero-cost and empty runs, donor order and its ties), and
the bulk seed policy's task counts. Every expected plan is worked out by hand from the
module text; the comments give the arithmetic (L = the level, total work / total cpus).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples

from daemon.core.plan import BulkMove, QueueSummary, _donor_gives, plan_bulk, summaries_from_samples


def q(name, cpus, running=(), runs=(), incoming=0.0, incoming_count=0):
    return QueueSummary(name, cpus, tuple(running), tuple(runs), incoming, incoming_count)


def sample(name, cpus, running=(), runs=(), outgoing=(), unconfirmed=()):
    """A detailed sample whose queue is given as runs only (a long queue)."""
    return {
        "name": name, "cpus": cpus, "running_tasks": [list(r) for r in running],
        "queue_runs": [list(r) for r in runs], "outgoing": [list(o) for o in outgoing],
        "unconfirmed": list(unconfirmed),
    }


# --- summaries from samples ---------------------------------------------------------------


def test_summaries_count_in_flight_work_and_tasks_at_their_destination_and_default_to_none():
    donor = sample("b", 1, running=[["r", 1]], runs=[[2, 3]],
                   outgoing=[["m1", "a", 2, 3.0], ["m2", "a", 1, 4.0]])
    dest = sample("a", 2, unconfirmed=["m2"])  # m2 already in a's queue: only m1 is in flight
    a, b = summaries_from_samples([donor, dest])  # sorted by name
    assert a == q("a", 2, incoming=3.0, incoming_count=2)
    assert (a.work, a.queued) == (3.0, 0)
    assert b == q("b", 1, running=(1.0,), runs=((2.0, 3),))  # nothing in flight to b: 0.0 and 0
    assert (b.incoming, b.incoming_count) == (0.0, 0)
    assert type(b.running[0]) is float and type(b.runs[0][0]) is float
    assert (b.work, b.queued) == (7.0, 3)


def test_queue_summary_rejects_no_cpus_naming_the_node():
    with pytest.raises(ValueError, match=r"^node a: cpus must be >= 1, got 0$"):
        q("a", 0)


# --- plan_bulk's checks and policies ------------------------------------------------------


def test_plan_bulk_rejects_an_unknown_policy_even_without_loads():
    with pytest.raises(ValueError, match=r"^unknown balancing policy 'fair': choose one of heap, seed, none$"):
        plan_bulk([], "fair")
    with pytest.raises(ValueError, match=r"^unknown balancing policy 'fair'"):
        plan_bulk([q("a", 1, runs=[(1.0, 4)]), q("b", 1)], "fair")


def test_plan_bulk_names_the_node_that_appears_twice():
    with pytest.raises(ValueError, match=r"^node b appears twice in the loads$"):
        plan_bulk([q("a", 1), q("b", 1), q("b", 2)])


def test_the_default_bulk_policy_is_heap_and_none_moves_nothing():
    loads = [q("a", 1, runs=[(1.0, 4)]), q("b", 1)]
    # L = 2: a is 2 above, b 2 below; k·1 < 2 + 1/2 on both sides: k = 2 (seed would give 1)
    assert plan_bulk(loads) == [BulkMove("a", "b", 2, 2.0)]
    assert plan_bulk(loads, "none") == []


# --- heap: boundaries ----------------------------------------------------------------------


def test_heap_plans_a_total_work_below_one_second():
    # L = 0.25; a is 0.25 above: k·0.25 < 0.25 + 0.125 gives k = 1; a then sits at the level
    assert plan_bulk([q("a", 1, runs=[(0.25, 2)]), q("b", 1)]) == [BulkMove("a", "b", 1, 0.25)]


def test_heap_ignores_an_empty_tail_run():
    # L = 1: the tail run of count 0 is no task; the run before it gives 1 (1 < 1 + 1/2)
    loads = [q("a", 1, runs=[(1.0, 2), (5.0, 0)]), q("b", 1)]
    assert plan_bulk(loads) == [BulkMove("a", "b", 1, 1.0)]


def test_heap_donor_with_a_zero_cost_tail_gives_nothing():
    # the tail task gains nothing by moving, and the donor gives from its tail only
    loads = [q("a", 1, runs=[(1.0, 4), (0.0, 3)]), q("b", 1)]
    assert plan_bulk(loads) == []


def test_heap_donors_give_most_excess_first():
    # L = 2: b is 3 above, a 1; c and d have room 2 each (tie: c, the first)
    # b: 2 to c (room 2), then 1 to d (its own side: 1 < 1 + 1/2 allows 1); a: 1 to d
    loads = [q("a", 1, runs=[(1.0, 3)]), q("b", 1, runs=[(1.0, 5)]), q("c", 1), q("d", 1)]
    assert plan_bulk(loads) == [BulkMove("b", "c", 2, 2.0), BulkMove("b", "d", 1, 1.0), BulkMove("a", "d", 1, 1.0)]


def test_heap_donors_with_equal_excess_give_in_name_order_not_load_order():
    # L = 2: b and a are both 1 above; a gives first although listed second
    loads = [q("b", 1, runs=[(1.0, 3)]), q("a", 1, runs=[(1.0, 3)]), q("c", 1)]
    assert plan_bulk(loads) == [BulkMove("a", "c", 1, 1.0), BulkMove("b", "c", 1, 1.0)]


def test_heap_limit_caps_each_receiver_and_a_full_receiver_is_passed_over():
    # L = 3: a is 4 above; b has room 3, c room 1 (2 s running)
    loads = [q("a", 1, runs=[(1.0, 7)]), q("b", 1), q("c", 1, running=[2.0])]
    # unbounded (MAX_TRANSFER_TASKS): b takes 3, then c its 1
    assert plan_bulk(loads) == [BulkMove("a", "b", 3, 3.0), BulkMove("a", "c", 1, 1.0)]
    # limit 1: b takes 1 and still has the most room (2), but its quota is 0: c takes 1
    assert plan_bulk(loads, limit=1) == [BulkMove("a", "b", 1, 1.0), BulkMove("a", "c", 1, 1.0)]


def test_heap_limit_counts_everything_a_donor_gave_one_receiver():
    # L = 5.5: a's tail run (1 task) goes to b, then the run before it, up to the limit
    # of 3 in all: 1 + 2; a stays 2.5 above, b 2.5 below, both with quota 0 left
    loads = [q("a", 1, runs=[(1.0, 10), (1.0, 1)]), q("b", 1)]
    assert plan_bulk(loads, "heap", limit=3) == [BulkMove("a", "b", 3, 3.0)]


def test_heap_with_limit_zero_moves_nothing():
    assert plan_bulk([q("a", 1, runs=[(1.0, 4)]), q("b", 1)], limit=0) == []


def test_bulk_seed_counts_running_queued_and_incoming_tasks():
    # a: 0 running + 1 queued + 2 in flight = 3 >= 75% of 4 cpus: gives its last queued
    # task (the run of count 0 after it is no task) to b, the only other node with a free cpu
    loads = [q("a", 4, runs=[(3.0, 1), (1.0, 0)], incoming=2.0, incoming_count=2), q("b", 1)]
    assert plan_bulk(loads, "seed") == [BulkMove("a", "b", 1, 3.0)]
    # 1 running + 2 queued on 4 cpus: 3, busy enough
    loads = [q("a", 4, running=[1.0], runs=[(1.0, 2)]), q("b", 1)]
    assert plan_bulk(loads, "seed") == [BulkMove("a", "b", 1, 1.0)]


def test_bulk_seed_node_that_received_gives_nothing_in_the_round():
    # a (2 tasks, 1 cpu) gives to b (1 free cpu, tie with c: node order); b (4 tasks on
    # 4 cpus) would give next, but it has just received: the round ends
    loads = [q("a", 1, runs=[(1.0, 2)]), q("b", 4, runs=[(5.0, 3)]), q("c", 1)]
    assert plan_bulk(loads, "seed") == [BulkMove("a", "b", 1, 1.0)]


def test_heap_receiver_with_most_room_left_takes_the_next_piece():
    # L = 1.75: a is 2.25 above; b has room 1.75, c 0.5 (1.25 s running).
    # a's tail (1 s) goes to b, which keeps room 0.75, still the most: b takes the next
    # task (0.5 s; 0.5 < 0.75 + 0.25), then c one (room 0.5); a is then 0.25 above, and a
    # further 0.5 would take it half a task below: the plan ends
    loads = [q("a", 1, runs=[(0.5, 6), (1.0, 1)]), q("b", 1), q("c", 1, running=[1.25])]
    assert plan_bulk(loads) == [BulkMove("a", "b", 2, 1.5), BulkMove("a", "c", 1, 0.5)]


# --- how much of its tail run a donor gives -------------------------------------------------


def donor_gives_by_its_definition(excess, runs):
    """daemon/core/plan.py ``_donor_gives`` as its text states it, by trying every count:
    the most tasks of the tail run that take the donor less than half of one of them
    below the level and, when that is the whole run and a run is left before it, less
    than half of that run's task too."""
    cost, count = runs[-1]
    for k in range(count, -1, -1):
        below = k * cost - excess
        if below >= cost / 2:
            continue
        if k == count and len(runs) > 1 and below >= runs[-2][0] / 2:
            continue
        return k
    return 0


@pytest.mark.parametrize("excess, runs, gives", [
    (2.25, [(1.0, 2)], 2),               # the whole only run: 2 < 2.25 + 1/2
    (2.0, [(2.0, 1), (1.0, 5)], 2),      # part of the run (2 < 2 + 1/2, not 3): the next run is not asked
    (1.5, [(1.0, 3), (2.0, 1)], 0),      # the whole run would end 0.5 below: not less than 1/2 of the next
    (2.0, [(3.0, 1), (1.0, 2)], 2),      # the whole run ends at the level: less than 3/2
    (1.625, [(1.0, 1), (2.0, 1)], 1),    # ends 0.375 below: less than 1/2 of the next run's task
    (2.75, [(0.5, 4), (1.0, 3)], 2),     # 3 would end 0.25 below, not less than 0.5/2: one stays
])
def test_donor_gives_hand_worked(excess, runs, gives):
    runs = [list(r) for r in runs]
    assert donor_gives_by_its_definition(excess, runs) == gives
    assert _donor_gives(excess, runs) == gives


halves = st.integers(1, 8).map(lambda n: n / 2)  # costs exact in binary: no rounding at the edges


@given(st.integers(1, 60).map(lambda n: n / 4), st.lists(st.tuples(halves, st.integers(1, 6)), min_size=1, max_size=3))
@settings(max_examples=examples(300))
def test_donor_gives_what_its_definition_says(excess, runs):
    runs = [list(r) for r in runs]
    assert _donor_gives(excess, runs) == donor_gives_by_its_definition(excess, runs)


def test_bulk_seed_node_below_three_quarters_of_its_cpus_gives_nothing():
    # a: 1 running + 1 queued = 2 tasks on 4 cpus, below 75 % (3): it keeps its queue,
    # though b is idle; with 3 tasks it gives one
    assert plan_bulk([q("a", 4, running=[1.0], runs=[(1.0, 1)]), q("b", 1)], "seed") == []
    assert plan_bulk([q("a", 4, running=[1.0], runs=[(1.0, 2)]), q("b", 1)], "seed") == [BulkMove("a", "b", 1, 1.0)]
