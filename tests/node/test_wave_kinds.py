"""Wave kinds as the node core sees them (daemon/core/node.py, daemon/plugins.py): a wave
id names its kind, a kind that raises is contained like a hostile frame, a kind that
cannot be loaded or is malformed is skipped and reported, and a kind that watches the
node's work is told when it changes. Real node cores of the seed tree, real kinds
registered for the test (no mocks)."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from daemon import plugins, wire
from daemon.core import messages as m
from daemon.core.node import NodeConfig, NodeCore, Reply, Send
from daemon.core.wave import Int, MessageType, Wave, Work
from daemon.core.waves import new_wave_id
from tests import wavemsgs as W
from tests.node.hostile import EPOCH, NOW, SEED

OP = b"op-1"


def node(name: str = "subserviate") -> NodeCore:
    return NodeCore(NodeConfig.of(SEED, name), EPOCH, NOW)


def wave(tag: str, k: int = 0) -> str:
    return new_wave_id(tag, int(NOW * 1e9) + k, f"k{k}")


class Poke(NamedTuple):
    wave: str
    n: int


class Raising(Wave):
    """Sends one POKE to every neighbour as it starts, then raises on the first POKE it
    gets with ``n`` = 1 (a kind with a bug), or on its start if told to."""

    name = "raising"
    tag = "rz"
    summary = "a kind with a bug, for the tests"
    messages = (MessageType("raising.poke", Poke, {"n": Int(0, 9)}),)
    params = {"boom": Int(0, 1)}
    defaults = {"boom": 0}

    def start(self):
        for q in self.node.neighbours:
            self.node.send(q, Poke(self.wave, 1))
        if self.params["boom"]:
            raise ZeroDivisionError("boom at the start")

    def receive(self, sender, msg):
        self.node.send(sender, Poke(self.wave, 0))  # not sent: the event fails
        if msg.n == 1:
            raise RuntimeError(f"poked by {sender}")


class Watcher(Wave):
    """Decides with the node's work each time it changes (a termination detector's view)."""

    name = "watcher"
    tag = "wt"
    watches_work = True

    def start(self):
        self.seen = []

    def receive(self, sender, msg):
        pass

    def work(self):
        self.seen.append(self.node.work())


@pytest.fixture
def kinds():
    plugins.register(Raising)
    plugins.register(Watcher)
    try:
        yield
    finally:
        plugins.unregister("raising")
        plugins.unregister("watcher")


def test_a_wave_id_whose_tag_is_not_its_kinds_is_refused():
    core = node()
    effects = core.handle(OP, 0, W.EchoStart(wave("f"), False, 1.0), NOW)
    assert effects == [Reply(OP, m.Error("bad-wave", f"subserviate: {wave('f')!r} is not a echo wave id "
                                                     "(its first part must be 'e')", id=0))]
    assert core.handle(b"tubularia", EPOCH, W.Explore(wave("f"), False, 1.0), NOW) == []
    assert core.handle(b"tubularia", EPOCH, W.Finn(wave("e"), ["root"], ["root"], 1, 1.0), NOW) == []
    assert core.stats["wave_errors"] == 3 and not core.waves


def test_a_start_of_a_kind_not_installed_is_refused():
    core = node()
    effects = core.handle(OP, 0, m.WaveStart(wave("zz"), "zz", {}, 1.0), NOW)
    assert effects == [Reply(OP, m.Error("unknown-kind", "subserviate: no wave kind 'zz' is installed here", id=0))]


def test_a_kind_that_raises_is_contained_counted_told_and_dropped(kinds):
    core = node()
    w = wave("rz")
    effects = core.handle(OP, 0, m.WaveStart(w, "raising", {"boom": 0}, 1.0), NOW)
    assert sorted(e.dest for e in effects if type(e) is Send) == ["pical", "tubularia"]
    effects = core.handle(b"pical", EPOCH, m.WaveMessage(w, Poke(w, 1), {"boom": 0}, 1.0, OP), NOW)
    assert effects == [Reply(OP, m.Error("wave-fault", f"subserviate: raising wave {w}: RuntimeError: poked by pical "
                                                       "(the wave is dropped here)"))]  # its POKE back is not sent
    assert core.stats["wave_faults"] == 1 and core.stats["internal"] == 0 and w not in core.waves
    assert w in core.done_waves  # a late message does not start it again
    assert core.handle(b"tubularia", EPOCH, m.WaveMessage(w, Poke(w, 1), {"boom": 0}, 1.0, OP), NOW) == []
    assert core.stats["late"] == 1
    # the node keeps serving: an echo wave runs as ever
    e = wave("e")
    sent = core.handle(OP, 0, W.EchoStart(e, False, 1.0), NOW)
    assert [s.dest for s in sent] == ["tubularia", "pical"]
    # a start that raises: the operator that sent it is told, nothing is sent
    b = wave("rz", 1)
    effects = core.handle(OP, 0, m.WaveStart(b, "raising", {"boom": 1}, 1.0), NOW)
    assert effects == [Reply(OP, m.Error("wave-fault", f"subserviate: raising wave {b}: ZeroDivisionError: boom at "
                                                       "the start (the wave is dropped here)"))]
    assert core.stats["wave_faults"] == 2 and b not in core.waves


def test_a_kind_that_raises_over_the_wire_is_contained_too(kinds):
    """Its messages are checked at the edge against its bounds, like any kind's."""
    core = node()
    w = wave("rz")
    frame = wire.encode("wave", EPOCH, wave=w, msg="raising.poke", body=[1], params={"boom": 0}, budget=1.0, report=OP)
    epoch, msg = wire.parse(frame)
    assert msg == m.WaveMessage(w, Poke(w, 1), {"boom": 0}, 1.0, OP)
    assert core.handle(b"pical", epoch, msg, NOW) == [Reply(OP, m.Error(
        "wave-fault", f"subserviate: raising wave {w}: RuntimeError: poked by pical (the wave is dropped here)"))]
    with pytest.raises(wire.WireError, match=r"^raising.poke: field 'n' must be 0..9, got 10$"):
        wire.parse(wire.encode("wave", EPOCH, wave=w, msg="raising.poke", body=[10], params={"boom": 0}, budget=1.0,
                               report=OP))


def test_a_kind_that_watches_the_nodes_work_is_told_each_change(kinds):
    core = node()
    w = wave("wt")
    core.handle(OP, 0, m.WaveStart(w, "watcher", {}, 1.0), NOW)
    watcher = core.waves[w].wave
    core.handle(OP, 0, m.Submit(1, 1.0, "x"), NOW)  # queued, and started at once (2 cpus)
    core.tick(NOW + 1.5)  # ended
    assert watcher.seen[0] == Work(False, 0, 0) and watcher.seen[-1] == Work(True, 0, 0)
    core.handle(b"pical", EPOCH, m.Transfer("m1", [["t1", "x", 1.0]], NOW + 5, []), NOW + 2)
    assert watcher.seen[-1].received == 1 and not watcher.seen[-1].idle
    assert core.stats["wave_faults"] == 0 and core.stats["internal"] == 0


def test_a_kind_that_fails_to_load_or_is_malformed_is_skipped_and_reported():
    class NoName(Wave):
        pass

    class BadMessage(Wave):
        name = "badmsg"
        messages = (MessageType("badmsg.x", tuple, {}),)

    class Clash(Wave):
        name = "clash"
        tag = "e"  # echo's

    try:
        for cls in (NoName, BadMessage, Clash):
            plugins.register(cls)
        broken = plugins.broken()
        assert "NoName" in str(broken) or any("name" in why for why in broken.values())
        assert "NamedTuple whose first field is 'wave'" in broken["badmsg"]
        assert broken["clash"] == "clash: its tag 'e' is another kind's"
        assert {"echo", "finn"} <= set(plugins.wave_kinds()) and "clash" not in plugins.wave_kinds()
    finally:
        for name in (repr(NoName), "badmsg", "clash", ""):
            plugins._extra.pop(name, None)
        plugins.reload()
    assert plugins.broken() == {}


# --- ctl wave (in process: its refusals come before it asks the cluster anything) -------


class RingOnly(Wave):
    """Runs on a directed ring only (as Chang–Roberts does)."""

    name = "ringonly"
    summary = "a kind that needs a ring, for the tests"

    @classmethod
    def refuse(cls, graph):
        if any(len(graph.children(n)) != 1 or len(graph.parents(n)) != 1 for n in graph.nodes):
            return "not a directed ring: every node needs exactly one in- and one out-neighbour"
        return None


def test_ctl_wave_refuses_a_topology_the_kind_cannot_run_on_with_its_reason(capsys):
    from ctl.cli import main

    plugins.register(RingOnly)
    try:
        assert main(["wave", "ringonly", "-t", str(SEED.path)]) == 1
    finally:
        plugins.unregister("ringonly")
    err = capsys.readouterr().err
    assert err == ("ctl wave: ringonly cannot run on cluster seed: not a directed ring: every node needs exactly one "
                   "in- and one out-neighbour\n")


def test_ctl_wave_lists_the_kinds_one_line_each_and_the_broken_ones(capsys):
    from ctl.cli import main

    class Broken(Wave):
        name = "broken"
        tag = "f"  # Finn's

    plugins.register(RingOnly)
    plugins.register(Broken)
    try:
        assert main(["wave", "--list"]) == 0
    finally:
        plugins.unregister("ringonly")
        plugins.unregister("broken")
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert names[:-1] == sorted([*plugins.wave_kinds(), "ringonly"]) and names[-1] == "broken"
    assert {"echo", "finn", "ringonly"} <= set(names) and len(names) == len(set(names))
    assert "ringonly     a kind that needs a ring, for the tests" in lines
    assert lines[-1] == "broken       BROKEN: broken: its tag 'f' is another kind's"
    assert lines[names.index("finn")].endswith("[params: tasks=1, cost=1.0]")


@pytest.mark.parametrize(("argv", "text"), [
    (["wave", "nothing"], "no wave kind 'nothing' is installed (installed: echo, "),
    (["wave", "finn", "--param", "x=1"], "--param x: finn has no such parameter (it takes: cost, tasks)"),
    (["wave", "finn", "--param", "tasks=-1"], "--param tasks=-1: must be 0..100000"),
    (["wave", "echo", "--param", "detail=maybe"], "--param detail=maybe: expected true or false"),
    (["wave"], "name a wave kind"),
])
def test_ctl_wave_bad_arguments_exit_2_naming_what_is_wrong(capsys, argv, text):
    from ctl.cli import main

    assert main([*argv, "-t", str(SEED.path)]) == 2
    assert text in capsys.readouterr().err
