"""The simulator catches the mistakes seen in public versions of this lab (ARCHITECTURE.md, "The waves").

Each variant below is the correct core with one classic mistake put back. Run through
the simulator on a few generated topologies and seeds, every one of them must be
flagged by the run's own checks — otherwise those checks are too weak to trust."""

from __future__ import annotations

import pytest

from daemon.core.echo import EchoWave
from daemon.core.finn import FinnWave
from daemon.sim.echo import simulate_echo
from daemon.sim.drive import EventLimitExceeded
from daemon.sim.finn import ancestor_problems, simulate_finn
from daemon.sim.graph import IndexedGraph
from daemon.topogen import generate

CASES = [(shape, seed) for shape in ("tree", "dag", "strong") for seed in (1, 2, 3)]


def graph(shape, seed, n=25):
    return IndexedGraph(generate(n, shape, seed))


class CountingMessages(EchoWave):
    """Counts messages instead of distinct senders: a duplicate fakes a neighbour."""

    def receive(self, sender, msg):
        if not self.finished:
            self.count = getattr(self, "count", 0) + 1
            self.heard.add(("message", self.count))
        return super().receive(sender, msg)


class ExploresItsFather(EchoWave):
    """Floods EXPLORE to every neighbour, the father included."""

    def _join(self, father):
        super()._join(None)
        self.father = father


class ResettingSets(FinnWave):
    """Resets Inc and NInc right after forwarding them."""

    def _broadcast(self):
        super()._broadcast()
        self.inc, self.ninc = frozenset((self.me,)), frozenset()


class WaitsForEveryInNeighbour(FinnWave):
    """Sends only once it has heard every in-neighbour (deadlocks on cycles)."""

    def _broadcast(self):
        if self.ins and len(self.heard) < len(self.ins):
            self.started = True
            return
        super()._broadcast()


class SilentDecider(FinnWave):
    """Stops forwarding on the step where it decides."""

    def _broadcast(self):
        if not self.decided and self.inc == self.ninc:
            self.started = self.decided = True
            self._decide()
            return
        super()._broadcast()


class SourceNeverInNInc(FinnWave):
    """A source initiates without entering NInc."""

    def start(self):
        if self.started:
            return
        self._broadcast()


class KeepsTheLatestMessage(FinnWave):
    """Takes the sets of the latest message instead of their union: right on FIFO
    channels where each message holds the last, wrong once the network reorders."""

    def receive(self, sender, msg):
        super().receive(sender, msg)
        self.inc = msg.inc | {self.me}
        self.ninc = msg.ninc | ({self.me} if self.me in self.ninc else set())


class RefloodsOnEveryReceipt(FinnWave):
    """Forwards on every message, grown or not."""

    def receive(self, sender, msg):
        sent = self.sent
        super().receive(sender, msg)
        if self.sent == sent:
            self._broadcast()


def flagged_echo(variant, monkeypatch, dup):
    monkeypatch.setattr("daemon.sim.echo.EchoWave", variant)
    hits = 0
    for shape, seed in CASES:
        g = graph(shape, seed)
        try:
            hits += bool(simulate_echo(g, seed=seed, dup=dup).problems(g))
        except EventLimitExceeded:  # a core that never stops sending
            hits += 1
    return hits


def flagged_finn(variant, monkeypatch, shapes=("tree", "dag", "strong")):
    monkeypatch.setattr("daemon.sim.finn.FinnWave", variant)
    hits = 0
    for shape, seed in CASES:
        if shape in shapes:
            g = graph(shape, seed)
            try:
                run = simulate_finn(g, seed=seed, dup=0.05, clocks=True)
            except EventLimitExceeded:  # a core that never stops sending
                hits += 1
                continue
            hits += bool(run.problems() or ancestor_problems(run, g))
    return hits


def test_the_correct_cores_pass(monkeypatch):
    assert flagged_echo(EchoWave, monkeypatch, dup=0.3) == 0
    assert flagged_finn(FinnWave, monkeypatch) == 0


def test_counting_messages_is_caught_with_duplicates(monkeypatch):
    assert flagged_echo(CountingMessages, monkeypatch, dup=0.3) == len(CASES)


def test_exploring_the_father_is_caught(monkeypatch):
    assert flagged_echo(ExploresItsFather, monkeypatch, dup=0.0) == len(CASES)


@pytest.mark.parametrize("variant, shapes, at_least", [
    (ResettingSets, ("dag", "strong"), 6),
    (WaitsForEveryInNeighbour, ("strong",), 3),
    (SilentDecider, ("tree", "dag", "strong"), 9),
    (SourceNeverInNInc, ("tree", "dag"), 6),
    (RefloodsOnEveryReceipt, ("strong",), 3),
    # Depends on an unlucky reordering: seen in 5 of these 6 runs.
    (KeepsTheLatestMessage, ("dag", "strong"), 5),
])
def test_finn_mistakes_are_caught(monkeypatch, variant, shapes, at_least):
    assert flagged_finn(variant, monkeypatch, shapes) >= at_least
