"""No frame can hurt a node: the node core under hostile input.

Each frame goes through the same edge as in the daemon — ``wire.parse`` (garbage is
counted there) then ``NodeCore.handle`` — and the core must never raise, never count an
``internal`` failure, keep its wave tables bounded, and keep its journal a faithful copy
of its task board (write-ahead: every change reaches a Persist effect). Every step is
recorded as the daemon records it (daemon/trace/recorder.py), and every ``trace.get``
answered from that record in one bounded frame. The first tests
are the cases found by trying the daemon as a hostile local client would; the property
test then feeds thousands of schema-shaped frames (tests/node/hostile.py).
"""

from __future__ import annotations

import random

import pytest

from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon import wire
from daemon.core.node import MAX_WAVES
from daemon.core.waves import new_wave_id
from tests.node.hostile import EPOCH, NOW, SEED, FrameMaker, Probe
from tests import wavemsgs as W


def wave(kind: str = "e", k: int = 0) -> str:
    return new_wave_id(kind, int(NOW * 1e9) + k, f"p{k}")


# --- the cases found by hand, each once fatal or unbounded --------------------------


def test_a_wave_message_from_a_routing_id_that_is_not_utf8_is_refused():
    p = Probe()
    for kind, fields in (("wave", W.explore_fields(wave(), False, 1.0)),
                         ("wave", W.finn_fields(wave("f"), [], [], 1, 1.0, b"op"))):
        p.send(b"\xff\xfe", kind, **fields)
        assert p.last_error() == "not-a-node"
    assert not p.core.waves and p.core.stats["refused"] == 2
    p.check()


def test_a_transfer_from_an_unknown_identity_is_refused_and_answered_to_nobody():
    p = Probe()
    p.send(b"evil", "transfer", move_id="m1", tasks=[["t1", "x", 1.0]], expires=NOW + 5, waves=[])
    assert p.last_error() == "not-a-node" and not p.sends  # no socket toward "evil"
    assert len(p.core.board.queued) == 0
    p.check()


def test_transfer_costs_that_are_not_finite_or_too_big_are_refused():
    p = Probe()
    for cost in (float("nan"), float("inf"), 1e300, -1.0, 0):
        p.send(b"pical", "transfer", move_id=f"m{cost}", tasks=[["t1", "x", cost]], expires=NOW + 5, waves=[])
    assert p.core.stats["garbage"] == 5 and len(p.core.board.queued) == 0
    p.check()


def test_a_transfer_holding_two_tasks_with_one_id_is_refused():
    p = Probe()
    p.send(b"pical", "transfer", move_id="m1", tasks=[["t1", "x", 1.0], ["t1", "x", 2.0]], expires=NOW + 5, waves=[])
    assert p.core.stats["garbage"] == 1 and len(p.core.board.queued) == 0
    p.check()


def test_the_same_task_arriving_twice_by_two_moves_runs_twice_without_harm():
    """The one legitimate duplicate (daemon/core/tasks.py): the board keys running tasks by
    slot, so two copies of an id can run side by side and both finish."""
    p = Probe()
    for k in range(2):
        p.send(b"pical", "transfer", move_id=f"m{k}", tasks=[["t1", "x", 1.0]], expires=NOW + 5, waves=[])
    assert p.core.board.busy_slots() == 2
    p.tick(2.0)
    assert p.core.board.done == 2
    p.check()


def test_finn_start_with_a_cost_that_is_not_finite_is_garbage():
    p = Probe()
    p.send(b"op", "wave.start", **W.finn_start_fields(wave("f"), 1, float("nan")))
    assert p.core.stats["garbage"] == 1 and not p.core.waves
    p.check()


def test_an_operator_request_under_a_neighbours_name_cannot_poison_its_epoch():
    p = Probe()
    p.send(b"tubularia", "ping", epoch=2**64 - 1, id=1)  # a node never pings: refused first
    p.send(b"tubularia", "wave", epoch=2**64 - 1, **W.explore_fields(wave(), False, 1.0))  # implausible
    assert p.core.sender_epochs.get("tubularia") is None
    p.send(b"tubularia", "wave", **W.explore_fields(wave("e", 1), False, 1.0))  # the real one still counts
    assert wave("e", 1) in p.core.waves and p.core.waves[wave("e", 1)].wave.joined
    p.check()


def test_finn_start_tasks_and_report_are_bounded():
    p = Probe()
    p.send(b"op", "wave.start", **W.finn_start_fields(wave("f"), 300_000, 1.0))
    p.send(b"op", "wave", **W.finn_fields(wave("f", 1), [], [], 1, 1.0, report=b"x" * 100_000))
    assert p.core.stats["garbage"] == 2 and not p.core.waves
    p.check()


def test_explores_from_a_non_neighbour_create_no_wave_state():
    p = Probe()
    for k in range(5000):
        p.send(b"root", "wave", **W.explore_fields(wave("e", k), False, 1.0))
    assert not p.core.waves and p.core.stats["wave_errors"] == 5000
    p.check()


def test_wave_state_is_bounded_whatever_the_neighbours_and_operators_start():
    p = Probe()
    for k in range(3 * MAX_WAVES):
        p.send(b"op", "wave.start", **W.finn_start_fields(wave("f", k), 0, 1.0))
        p.send(b"tubularia", "wave", **W.explore_fields(wave("e", k), False, 100.0))
    assert len(p.core.waves) <= MAX_WAVES
    assert p.last_error() == "busy"
    p.tick(120)  # their TTL: room again
    p.send(b"op", "wave.start", **W.finn_start_fields(wave("f", 10**6), 0, 1.0))
    assert wave("f", 10**6) in p.core.waves
    p.check()


def test_trace_requests_from_a_node_or_with_garbage_fields_are_refused():
    p = Probe()
    p.send(b"tubularia", "trace.get", id=1, wave_ids=[], max_steps=10)  # a node never asks
    assert p.core.stats["refused"] == 1 and not p.traces and not p.replies  # and is told nothing
    for wave_ids in ([5], [None], ["x" * 257], [["e"]]):
        p.send(b"op", "trace.get", id=1, wave_ids=wave_ids, max_steps=10)
        assert p.last_error() == "bad-trace" and not p.traces
    for fields in (dict(wave_ids=[], max_steps=-1), dict(wave_ids=[], max_steps=100_001),
                   dict(wave_ids=[], max_steps=1.0), dict(wave_ids=[], max_steps=True),
                   dict(wave_ids=["w"] * 17, max_steps=1), dict(wave_ids="e", max_steps=1)):
        with pytest.raises(wire.WireError, match="trace.get: field '(max_steps|wave_ids)'"):
            wire.parse(wire.encode("trace.get", EPOCH, id=1, **fields))
    p.send(b"op", "trace.get", id=1, wave_ids=["x" * 256], max_steps=100_000)  # the limits themselves
    assert len(p.traces) == 1 and p.traces[0]["node"] == "subserviate"
    p.check()


def test_a_wall_clock_that_steps_back_is_held_not_fatal():
    p = Probe()
    p.send(b"op", "submit", id=1, tasks=3, cost=2.0, label="x")
    p.tick(1.0)
    p.now -= 3600  # the clock steps back an hour
    p.tick(0.5)
    p.send(b"op", "submit", id=1, tasks=1, cost=1.0, label="y")
    p.tick(10.0)
    assert p.core.board.done == 4
    p.check()


def test_acks_and_forgets_from_the_wrong_node_change_nothing():
    p = Probe()
    p.send(b"op", "submit", id=1, tasks=3, cost=60.0, label="x")
    p.send(b"op", "move", id=1, move_id="mv", dest="pical", tasks=[t.id for t in p.core.board.queued], count=0)
    assert p.core.board.sample(p.now)["outgoing"]
    p.send(b"root", "ack", move_id="mv", accepted=True, waves=[])  # not the destination
    assert p.core.board.sample(p.now)["outgoing"]
    p.send(b"pical", "ack", move_id="mv", accepted=True, waves=[])
    assert not p.core.board.sample(p.now)["outgoing"]
    p.check()


# --- anything schema-shaped -------------------------------------------------------------

FRAMES_PER_EXAMPLE = 60


@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(["root", "subserviate", "pical", "tubularia"]))
@settings(max_examples=examples(200), deadline=None)
def test_no_stream_of_frames_makes_a_node_raise_or_lose_count(seed, name):
    """200 examples x 60 frames = 12,000 frames a run (under ``ci``), with time steps (back too)."""
    rng = random.Random(seed)
    p = Probe(name)
    maker = FrameMaker(rng, SEED.names, NOW, clock=lambda: p.now, queued=lambda: [t.id for t in p.core.board.queued])
    p.send(b"op", "submit", id=1, tasks=4, cost=1.0, label="base")
    for k in range(FRAMES_PER_EXAMPLE):
        if rng.random() < 0.1:
            p.tick(rng.choice([0.1, 0.6, 3.0, 7.0, -5.0]))
        p.frame(*maker.frame())
        if k % 10 == 9:
            p.check()
    p.tick(700)  # every deadline and memory passes
    p.check()
    assert p.core.stats["received"] + p.core.stats["garbage"] > 0
