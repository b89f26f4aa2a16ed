"""A detailed echo fits one frame whatever the queues hold: each sample lists at most
``listing_limit(nodes)`` queued tasks and QUEUE_RUNS runs (daemon/core/node.py,
daemon/core/tasks.py ``sample``)."""

from __future__ import annotations

import pytest

from daemon import wire
from daemon.core.messages import MAX_COUNT, MAX_FACT_ID
from daemon.core.node import QUEUE_DETAIL_LIMIT, listing_limit
from daemon.core.tasks import QUEUE_RUNS, Task, TaskBoard
from daemon.topology import MAX_NAME_LENGTH


@pytest.mark.parametrize("nodes", [1, 8, 200, 2000])
def test_a_detailed_echo_of_full_queues_fits_one_frame(nodes):
    """Worst case: the longest names, the longest ids, a queue just at the listing limit
    with every cost different (the most runs); the whole result stays within MAX_FRAME."""
    name = "n" * MAX_NAME_LENGTH
    limit = listing_limit(nodes)
    assert 1 <= limit <= QUEUE_DETAIL_LIMIT
    board = TaskBoard(name, 4)
    board.submit([Task(f"{name}:ffffffff:{10**15 + i}", "label", 1.0 + i) for i in range(limit + 4)], now=0.0)
    sample = board.sample(0.0, True, limit)
    assert len(sample["queued_tasks"]) == limit and len(sample["queue_runs"]) <= QUEUE_RUNS
    # what the node core adds: its last Finn wave and round at their largest (messages.py)
    sample["last_finn"] = ["f" * MAX_FACT_ID, 1e12 + 0.5, MAX_COUNT, MAX_COUNT]
    sample["last_round"] = ["m" * MAX_FACT_ID, 1e12 + 0.5, MAX_COUNT, MAX_COUNT, MAX_COUNT, MAX_COUNT]
    one = wire.pack_entries([(name, name, sample)])
    frame = wire.encode("wave.decided", 1, wave="e-1-abc", kind="echo", node=name, result=one * nodes, stream=True)
    assert len(frame) <= wire.MAX_FRAME, (nodes, len(frame))


def test_a_queue_past_the_limit_is_sampled_in_runs_only():
    board = TaskBoard("a", 1)
    board.submit([Task(f"t{i}", "x", 1.0) for i in range(QUEUE_DETAIL_LIMIT + 10)], now=0.0)
    sample = board.sample(0.0, True, QUEUE_DETAIL_LIMIT)
    assert "queued_tasks" not in sample
    assert sum(count for _, count in sample["queue_runs"]) == sample["queued"] == QUEUE_DETAIL_LIMIT + 9
