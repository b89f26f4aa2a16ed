"""A detailed echo sample lists a bounded tail of the queue and summarises the rest, so
an echo result fits one frame however long the queues are (daemon/core/tasks.py,
``TaskBoard.sample`` and ``detail_limit``), and the balancer plans with the summary
(daemon/core/plan.py, ``NodeLoad.unlisted``)."""

from __future__ import annotations

import pytest

from daemon import wire
from daemon.core.plan import NodeLoad, finish_time, loads_from_samples, plan_moves
from daemon.core.tasks import DETAIL_BUDGET, DETAIL_QUEUE, Task, TaskBoard, account, detail_limit
from daemon.topology import MAX_NAME_LENGTH


def board_with(n: int, cost: float = 2.0, cpus: int = 2, name: str = "a") -> TaskBoard:
    board = TaskBoard(name, cpus)
    board.submit([Task(f"{name}:1:{i}", "", cost) for i in range(n)], now=0.0)
    return board


def test_a_long_queue_lists_its_tail_and_summarises_the_head():
    board = board_with(DETAIL_QUEUE + 500)  # 2 run, the rest queued
    s = board.sample(0.0)
    queued = DETAIL_QUEUE + 498
    assert s["queued"] == queued and len(s["queued_tasks"]) == DETAIL_QUEUE
    assert s["queued_tasks"][-1] == ("a:1:1499", 2.0) and s["queued_tasks"][0] == ("a:1:500", 2.0)
    assert s["queued_unlisted"] == [498, 996.0]
    assert account([s])["balanced"]
    assert board.sample(0.0, detail=10)["queued_tasks"] == [(f"a:1:{i}", 2.0) for i in range(1490, 1500)]
    assert len(board.sample(0.0, detail=10**9)["queued_tasks"]) == DETAIL_QUEUE  # a node's own cap
    assert "queued_tasks" not in board.sample(0.0, detail=False)


def test_a_short_queue_is_listed_whole_without_a_summary():
    s = board_with(DETAIL_QUEUE + 2).sample(0.0)
    assert len(s["queued_tasks"]) == DETAIL_QUEUE and "queued_unlisted" not in s


def test_the_plan_counts_the_unlisted_head_as_work_that_stays():
    big = board_with(DETAIL_QUEUE * 3, cost=1.0, cpus=1, name="big").sample(0.0)
    idle = TaskBoard("idle", 1).sample(0.0)
    loads = loads_from_samples([big, idle])
    whole = NodeLoad("big", 1, (1.0,), tuple((f"big:1:{i}", 1.0) for i in range(1, DETAIL_QUEUE * 3)))
    assert loads[0].work == whole.work and finish_time(loads[0]) == finish_time(whole)
    moves = plan_moves(loads)
    moved = [t for m in moves for t in m.task_ids]
    listed = {t for t, _ in big["queued_tasks"]}
    assert moved and set(moved) <= listed  # only listed tasks move
    assert len(moved) == DETAIL_QUEUE  # the whole listed tail: the next round takes more


def test_seed_policy_counts_unlisted_tasks():
    s = board_with(DETAIL_QUEUE + 10, cpus=4).sample(0.0, detail=5)
    loads = loads_from_samples([s, TaskBoard("idle", 4).sample(0.0)])
    assert loads[0].unlisted == (DETAIL_QUEUE + 1, (DETAIL_QUEUE + 1) * 2.0)
    assert len(plan_moves(loads, "seed")) == 1


def test_bad_summary_is_named():
    s = board_with(3).sample(0.0)
    s["queued_unlisted"] = "lots"
    with pytest.raises(ValueError, match="node a: field 'queued_unlisted'"):
        loads_from_samples([s])


@pytest.mark.parametrize("nodes", [1, 8, 200, 2000])
def test_a_detailed_echo_of_full_queues_fits_one_frame(nodes):
    """Worst case: every node has the longest name and a queue far longer than it lists;
    the initiator's result (every node's sample in one stream) stays within MAX_FRAME."""
    limit = detail_limit(nodes)
    assert 1 <= limit <= DETAIL_QUEUE and DETAIL_BUDGET <= wire.MAX_FRAME // 2
    name = "n" * MAX_NAME_LENGTH
    board = TaskBoard(name, 4)
    # ids as the node daemon makes them: name, epoch (hex), a long sequence number
    board.submit([Task(f"{name}:ffffffff:{10**15 + i}", "label", 3600.0) for i in range(limit + 4 + 50)], now=0.0)
    sample = board.sample(0.0, detail=limit)
    assert len(sample["queued_tasks"]) == limit and sample["queued_unlisted"][0] == 50
    one = wire.pack_entries([(name, name, sample)])
    frame = wire.encode("echo.result", 1, wave="e-1-abc", entries=one * nodes)
    assert len(frame) <= wire.MAX_FRAME, (nodes, len(frame))
