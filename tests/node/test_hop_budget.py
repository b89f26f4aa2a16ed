"""An echo wave's deadlines shrink hop by hop (daemon/core/node.py ``hop_budget``): a
child's deadline comes before its father's by a margin its echo can arrive in."""

from __future__ import annotations

import pytest

from daemon import wire
from daemon.core import messages as m
from daemon.core.node import NodeConfig, NodeCore, Send, hop_budget
from daemon.core.waves import new_wave_id
from tests.node.hostile import EPOCH, NOW, SEED
from tests import wavemsgs as W


@pytest.mark.parametrize(("left", "given"), [
    (5.0, 5.0 - 5.0 / 16),  # a 16th where that is more than 50 ms
    (1.6, 1.5),
    (0.8, 0.75),  # a 16th is exactly 50 ms
    (0.6, 0.55),  # 50 ms
    (0.4, 0.35),  # 50 ms is exactly an 8th
    (0.2, 0.175),  # an 8th: a long chain never runs out
    (0.0, 0.0),
    (-1.0, -1.0),  # spent already: passed on, the receiver gives up at once
])
def test_hop_budget(left, given):
    assert hop_budget(left) == pytest.approx(given)


def test_explores_carry_the_budget_less_the_margin():
    """subserviate joins a wave from its father tubularia with 3 s left, and explores its
    child pical with 3 - 3/16 s; the initiator gives its children its timeout less the
    margin too."""
    core = NodeCore(NodeConfig.of(SEED, "subserviate"), EPOCH, NOW)
    wave = new_wave_id("e", int(NOW * 1e9), "t")
    effects = core.handle(b"tubularia", EPOCH, wire.parse(wire.encode("wave", EPOCH, **W.explore_fields(wave, False, 3.0)))[1], NOW)
    explores = [e for e in effects if type(e) is Send and W.is_explore(e.msg)]
    assert [e.dest for e in explores] == ["pical"]
    assert explores[0].msg.budget == pytest.approx(3.0 - 3.0 / 16)
    start = NodeCore(NodeConfig.of(SEED, "tubularia"), EPOCH, NOW)
    wave2 = new_wave_id("e", int(NOW * 1e9), "u")
    effects = start.handle(b"ctl-1", 0, W.EchoStart(wave2, False, 0.6), NOW + 0.1)
    budgets = [e.msg.budget for e in effects if type(e) is Send and W.is_explore(e.msg)]
    assert budgets and all(b == pytest.approx(0.55) for b in budgets)
