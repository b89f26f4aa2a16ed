"""The balancing asks, with time passed in: a node's debounce (Asker), the balancer's
gate (RoundGate: never two rounds at once, asks during a round make exactly one more),
and a watched NodeCore asking when work lands and when a slot frees."""

from daemon.core import messages as m
from daemon.core.asking import Asker, RoundGate
from daemon.core.node import NodeConfig, NodeCore, Reply


def test_asker_sends_nothing_without_a_watcher():
    a = Asker(gap=0.1)
    assert a.want("queued", 0.0) is None
    assert a.due() is None


def test_asker_sends_at_once_then_at_most_once_per_gap():
    a = Asker(gap=0.1)
    a.watch(b"op")
    assert a.want("idle", 1.0) == "idle"
    assert a.want("idle", 1.02) is None  # within the gap: held back
    assert a.want("queued", 1.05) is None  # merged into the held-back one, the stronger reason
    assert a.want("idle", 1.06) is None
    assert a.due() == 1.1
    assert a.take(1.09) is None
    assert a.take(1.1) == "queued"  # one ask for the three
    assert a.take(1.5) is None and a.due() is None
    assert a.want("idle", 1.5) == "idle"  # a gap after the last one: at once again


def test_asker_unwatched_drops_what_it_held():
    a = Asker(gap=0.1)
    a.watch(b"op")
    a.want("queued", 0.0)
    a.want("queued", 0.01)
    a.watch(None)
    assert a.due() is None and a.take(1.0) is None


def test_gate_clock_alone():
    g = RoundGate(interval=0.5, now=0.0)
    assert not g.start(0.4)
    assert g.start(0.5)
    g.finish(0.6, work_waiting=False)
    assert g.due() == 1.0


def test_gate_an_ask_starts_a_round_at_once():
    g = RoundGate(interval=10.0, now=0.0, asked_gap=0.05)
    assert g.ask("queued", 0.1)
    assert g.due() == float("-inf") and g.start(0.1)  # no round before: at once
    g.finish(0.2, work_waiting=True)
    assert g.next_clock == 10.1  # the clock counts from the latest round


def test_gate_never_two_rounds_and_exactly_one_more_after_asks_during_a_round():
    g = RoundGate(interval=10.0, now=0.0, asked_gap=0.05)
    g.ask("queued", 0.0)
    assert g.start(0.0)
    for t in (0.1, 0.2, 0.3):  # three asks while the round runs, each past the gap
        g.ask("queued", t)
        assert not g.start(t)  # never a second round in flight
    g.finish(0.4, work_waiting=True)
    assert g.start(0.4)  # one more, after it
    g.finish(0.5, work_waiting=True)
    assert not g.start(0.6) and g.due() == 10.4  # and only one: next is the clock's


def test_gate_keeps_a_gap_between_asked_rounds():
    g = RoundGate(interval=0, now=0.0, asked_gap=0.05)
    g.ask("queued", 0.0)
    assert g.start(0.0)
    g.finish(0.01, work_waiting=True)
    g.ask("queued", 0.02)
    assert not g.start(0.02) and g.start(0.05)


def test_gate_ignores_an_idle_slot_when_no_work_waits():
    g = RoundGate(interval=0, now=0.0)
    g.ask("queued", 0.0)
    assert g.start(0.0)
    g.finish(0.1, work_waiting=False)
    assert not g.ask("idle", 0.2) and g.due() is None  # nothing queued anywhere: no round
    assert g.ask("queued", 0.3) and g.start(0.3)


def _core(cpus=2):
    return NodeCore(NodeConfig("a", cpus, (), (), frozenset({"a"})), 1, 0.0, journaled=False)


def _wanted(effects):
    return [e.msg for e in effects if type(e) is Reply and type(e.msg) is m.BalanceWanted]


def test_node_asks_its_watcher_when_work_waits_and_when_a_slot_frees():
    core = _core(cpus=2)
    assert _wanted(core.handle(b"op", 1, m.Submit(5, 1.0, "x"), 0.0)) == []  # not watched
    core.handle(b"op", 1, m.BalanceWatch(True), 0.1)
    asked = _wanted(core.handle(b"op", 1, m.Submit(3, 1.0, "x"), 0.2))
    assert [(w.node, w.reason, w.queued, w.free) for w in asked] == [("a", "queued", 6, 0)]
    assert _wanted(core.handle(b"op", 1, m.Submit(1, 1.0, "x"), 0.25)) == []  # within the gap
    core.tick(0.26)  # housekeeping: the held-back ask is still held
    assert core.next_deadline() == core.asker.due() == 0.2 + core.asker.gap  # and is a deadline
    assert [w.reason for w in _wanted(core.tick(core.asker.due()))] == ["queued"]
    out = []
    for t in range(1, 8):
        out += _wanted(core.tick(float(t)))
    assert out and out[-1].reason == "idle" and out[-1].queued == 0  # the last tasks ended


def test_node_unwatched_asks_nothing():
    core = _core()
    core.handle(b"op", 1, m.BalanceWatch(True), 0.0)
    core.handle(b"op", 1, m.BalanceWatch(False), 0.0)
    assert _wanted(core.handle(b"op", 1, m.Submit(5, 1.0, "x"), 0.2)) == []


def test_only_an_operator_may_watch():
    core = NodeCore(NodeConfig("a", 1, (), ("b",), frozenset({"a", "b"})), 1, 0.0, journaled=False)
    effects = core.handle(b"b", 1, m.BalanceWatch(True), 0.0)
    assert core.asker.watcher is None and core.stats["refused"] == 1 and effects == []
