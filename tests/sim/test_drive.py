"""The simulator's event loop (daemon/sim/drive.py): a run that does not end fails
loudly instead of hanging its caller."""

from __future__ import annotations

import pytest

from daemon.core.wave import Wave

from daemon.core.waves import Step
from daemon.sim.drive import Driver, EventBudget, EventLimitExceeded
from daemon.sim.echo import simulate_echo
from daemon.sim.finn import simulate_finn
from sim_graphs import GraphCase


class PingPong:
    """A wave that never ends: every event sends one message to the other node."""

    def __init__(self, p):
        self.p = p


def apply(w, p, kind, src, msg):
    return Step(sends=((1 - p, "ping"),))


def test_a_run_that_never_ends_is_reported_at_the_limit():
    drive = Driver(2, seed=1)
    drive.run([0], PingPong, apply, lambda *a: None, max_events=50)
    assert drive.events == 50
    assert drive.limit == "50 events handled, 1 still queued"


def test_strict_raises_instead():
    drive = Driver(2, seed=1)
    with pytest.raises(EventLimitExceeded, match="50 events handled, 1 still queued"):
        drive.run([0], PingPong, apply, lambda *a: None, max_events=50, strict=True)
    assert drive.events == 50


def test_the_waves_default_limit_raises_for_a_core_that_refloods(monkeypatch):
    """With the default limit, a wave core that never stops sending is a bug: it raises.
    (An explicit ``max_events`` is a question, reported in ``limit``:
    tests/sim/test_sim_echo.py.)"""
    graph = GraphCase("strong", 3, ((0, 1), (1, 2), (2, 0)), (0, 1, 2)).graph()
    import daemon.sim.echo as echo
    import daemon.sim.finn as finn

    class Loud(Wave):
        """Sends to both other nodes on every event, forever."""

        def receive(self, *rest):
            for q in range(3):
                if q != self.node.me:
                    self.node.send(q, "x")

        start = receive

    monkeypatch.setattr(echo, "EchoWave", Loud)
    monkeypatch.setattr(finn, "FinnWave", Loud)
    with pytest.raises(EventLimitExceeded):
        simulate_echo(graph, seed=2)
    with pytest.raises(EventLimitExceeded):
        simulate_finn(graph, seed=2)


def test_event_budget():
    budget = EventBudget(3, "balancing run")
    for _ in range(3):
        budget.spend()
    with pytest.raises(EventLimitExceeded, match="balancing run: more than 3 events, 7 still queued"):
        budget.spend(queued=7)
    with pytest.raises(ValueError):
        EventBudget(0)
