"""A queue too long to list, balanced on real processes: the samples summarise it, the
plan says how many tasks go where, the donor picks them from its tail, and every task is
still counted exactly once (daemon/core/plan.py, "Bulk plans")."""

from __future__ import annotations

import time

import pytest

from daemon.core.tasks import account
from daemon.core.node import QUEUE_DETAIL_LIMIT
from daemon.operator import Operator
from daemon.topology import load

pytestmark = pytest.mark.e2e

DEADLINE = 60.0  # a bound on waiting for the hand-off, not a speed check


def test_a_long_queue_moves_by_count_and_every_task_is_counted_once(cluster_env):
    path = cluster_env.topology("seed.toml", rebalance_interval=0)
    r = cluster_env.ctl("start", path)
    assert r.returncode == 0, r.stdout + r.stderr
    total = 3 * 1000
    assert total > QUEUE_DETAIL_LIMIT
    with Operator(load(path), timeout=20.0) as op:
        for _ in range(3):
            op.submit("subserviate", 1000, 60.0)  # long tasks: nothing finishes during the test
        res = op.rebalance("heap")
        donor = next(n for n in res["before"]["nodes"] if n["name"] == "subserviate")
        assert "queued_tasks" not in donor, "a long queue must not be listed task by task"
        assert donor["queue_runs"] == [[60.0, donor["queued"]]]
        assert res["moves"] and all(m["from"] == "subserviate" and m["tasks"] == [] for m in res["moves"]), res["moves"]
        assert all(0 < m["count"] == m["planned"] for m in res["moves"]), res["moves"]
        assert res["imbalance_after"] < res["imbalance_before"]
        deadline = time.monotonic() + DEADLINE
        while True:
            snap = op.echo(detail=True)
            books = account(snap["nodes"])
            assert books["balanced"] and books["submitted"] == total, (books, [n["outgoing"] for n in snap["nodes"]])
            if not any(n["outgoing"] or n["unconfirmed"] for n in snap["nodes"]):
                break
            assert time.monotonic() < deadline, books
            time.sleep(0.05)
    held = {n["name"]: n["queued"] + n["running"] for n in snap["nodes"]}
    assert held["subserviate"] == total - res["moved"]
    for m in res["moves"]:
        assert held[m["to"]] >= m["count"]
    assert sum(held.values()) == total
