"""The burst scenario (daemon/sim/balance.py): real task boards in simulated time,
balanced by the real plan. Every run checks the accounting rule at every round itself
(a RuntimeError otherwise), so each run below is also an exactly-once check."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core.plan import POLICIES
from daemon.sim.balance import format_report, simulate
from daemon.topogen import generate

REPORT_KEYS = {
    "seed", "policy", "scenario", "nodes", "cpus", "tasks", "makespan", "lower_bound", "ratio",
    "moves", "rounds", "imbalance", "imbalance_cv",
}


def test_same_seed_same_report_and_it_is_plain_data():
    topology = generate(40, "tree", 3)
    first = simulate(topology, policy="heap", seed=7)
    assert REPORT_KEYS <= set(first)
    assert json.loads(json.dumps(first)) == first
    assert simulate(topology, policy="heap", seed=7) == first
    assert simulate(topology, policy="heap", seed=8) != first


def test_a_topology_and_its_node_list_give_the_same_run():
    topology = generate(25, "dag", 1)
    nodes = [(name, topology.node(name).cpus) for name in topology.names]
    assert simulate(nodes, seed=4, task_time=topology.cluster.task_time) == simulate(topology, seed=4)


def test_the_burst_and_its_yardsticks():
    nodes = [(f"n{i}", 1 + i % 4) for i in range(12)]  # 30 cpus
    # the clock alone (no asks): a round every interval
    report = simulate(nodes, policy="heap", seed=2, interval=0.5, task_time=2.0, triggers=False)
    assert (report["nodes"], report["cpus"], report["tasks"]) == (12, 30, 120)
    assert report["makespan"] >= report["lower_bound"] >= 4 * 2.0 * 0.5  # 4 tasks per cpu, >= 1 s each
    assert report["ratio"] == report["makespan"] / report["lower_bound"]
    times = [t for t, _ in report["imbalance"]]
    assert times == [0.5 * k for k in range(report["rounds"])]  # a round every interval
    assert report["imbalance"][0][1] > 3  # the burst sits on three nodes of twelve
    assert report["moves"] > 0 and report["imbalance_cv"] > 0


def test_balancing_beats_doing_nothing():
    topology = generate(60, "tree", 5)
    runs = {policy: simulate(topology, policy=policy, seed=5) for policy in POLICIES}
    assert runs["none"]["moves"] == 0
    assert runs["heap"]["makespan"] < runs["seed"]["makespan"] < runs["none"]["makespan"]
    # Without moves the burst's three nodes do all the work, one after another per CPU.
    assert runs["none"]["ratio"] > 5 > 1.5 > runs["heap"]["ratio"]


def test_one_node_has_nothing_to_balance():
    report = simulate([("solo", 2)], seed=1, task_time=0.5)
    assert report["tasks"] == 8 and report["moves"] == 0
    assert report["makespan"] == pytest.approx(report["lower_bound"], rel=0.5)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"scenario": "flood"}, "unknown scenario 'flood'"),
        ({"policy": "fifo"}, "unknown balancing policy 'fifo'"),
        ({"interval": 0}, "interval must be > 0"),
        ({"task_time": -1.0}, "task_time must be > 0"),
        ({"move_delay": -0.1}, "move_delay must be >= 0"),
    ],
)
def test_bad_arguments_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        simulate([("a", 1), ("b", 1)], **arguments)


def test_bad_node_lists_are_named():
    with pytest.raises(ValueError, match="node a appears twice"):
        simulate([("a", 1), ("a", 2)])
    with pytest.raises(ValueError, match="node b: cpus"):
        simulate([("a", 1), ("b", 0)])
    with pytest.raises(ValueError, match="no nodes"):
        simulate([])


def test_format_report_is_a_few_aligned_lines():
    text = format_report(simulate(generate(20, "tree", 2), seed=2))
    lines = text.splitlines()
    assert 3 <= len(lines) <= 8
    assert len({re.match(r"\S+ +", line).end() for line in lines}) == 1  # one column of values
    assert "burst, policy heap, seed 2" in text and "ratio" in text and "lower bound" in text


@settings(max_examples=150, deadline=None)
@given(
    cpus=st.lists(st.integers(1, 6), min_size=1, max_size=8),
    seed=st.integers(0, 2**32 - 1),
    policy=st.sampled_from(POLICIES),
    interval=st.sampled_from([0.25, 1.0, 3.0]),
    move_delay=st.sampled_from([0.0, 0.01, 0.4]),
)
def test_every_run_finishes_every_task_exactly_once(cpus, seed, policy, interval, move_delay):
    nodes = [(f"n{i}", c) for i, c in enumerate(cpus)]
    report = simulate(nodes, policy=policy, seed=seed, interval=interval, move_delay=move_delay)
    assert report["tasks"] == 4 * sum(cpus)
    assert report["makespan"] >= report["lower_bound"] * (1 - 1e-9)
    assert report["rounds"] >= 1 and report["imbalance"][0][0] == 0.0
    if policy == "none" or len(cpus) == 1:
        assert report["moves"] == 0


def test_a_run_that_does_not_end_fails_loudly(monkeypatch):
    """The burst's event loop has a budget (daemon/sim/drive.py EventBudget): past it the
    run raises instead of running on. A budget of 10 events stands for a stuck run."""
    import pytest

    from daemon.sim import balance
    from daemon.sim.drive import EventBudget, EventLimitExceeded

    monkeypatch.setattr(balance, "EventBudget", lambda limit, what: EventBudget(10, what))
    with pytest.raises(EventLimitExceeded, match="more than 10 events"):
        balance.simulate([("a", 1), ("b", 1)], seed=3)


def test_triggers_balance_a_burst_sooner_than_the_clock_alone():
    """The burst asks for a round as it lands (daemon/core/asking.py): the first round
    comes after one message delay instead of at the clock's next tick, and the tail's
    idle slots ask again, so the makespan is well below the clock's alone."""
    from daemon.sim.balance import simulate

    nodes = [(f"n{i}", 1 + i % 4) for i in range(20)]
    kw = dict(policy="heap", seed=3, interval=4.0, first_round=4.0, task_time=1.0)
    clock = simulate(nodes, triggers=False, **kw)
    asked = simulate(nodes, triggers=True, **kw)
    assert clock["imbalance"][0][0] == 4.0  # clock alone: the burst waits for the tick
    assert asked["imbalance"][0][0] == pytest.approx(0.01)  # asked: one message delay
    assert asked["makespan"] < 0.8 * clock["makespan"]
    assert asked["ratio"] < 1.5
