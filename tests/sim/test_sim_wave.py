"""The generic harness (daemon/sim/wave.py) with small kinds written here on the wave
interface: what it refuses to send, decisions once per node, deadlines as timer events,
atomic events, containment, finished instances, the event limit, Tel's dependence, the
start parameters, determinism — each with a kind that does the thing and a check that
the harness saw it."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from daemon.core.wave import Graph, Int, MessageType, Text, Wave
from daemon.core.waves import WaveError
from daemon.errors import BadInput
from daemon.sim.wave import Refused, bound_problem, kind_named, kinds, simulate_wave
from daemon.core.wave import Blob, Flag, Items, Names, Num

LINE = Graph(("a", "b", "c"), (("a", "b"), ("b", "c")))  # a -> b -> c


class Note(NamedTuple):
    wave: str
    text: str


class Other(NamedTuple):
    wave: str


class Roll(NamedTuple):
    wave: str
    names: list[str]


class Base(Wave):
    name = "probe"
    messages = (
        MessageType("probe.note", Note, {"text": Text(8)}),
        MessageType("probe.roll", Roll, {"names": Names(2)}),
    )
    hears_from = "parents"


def run(kind, graph=LINE, initiators=("a",), **kw):
    return simulate_wave(kind, graph, list(initiators), **kw)


class Flood(Base):
    """Forward a note to every child once; decide at the sinks."""

    def start(self):
        self.go()

    def receive(self, sender, msg):
        self.go()

    def go(self):
        if getattr(self, "gone", False):
            return
        self.gone = True
        for c in self.node.children:
            self.node.send(c, Note(self.wave, "hi"))
        if not self.node.children:
            self.node.decide({"at": self.node.me})


def test_a_correct_kind_runs_clean():
    sim = run(Flood)
    assert sim.violations == [] and sim.run.messages == 2
    assert sim.run.per_channel == {("a", "b"): 1, ("b", "c"): 1}
    assert sim.run.decisions == [("c", {"at": "c"})] and sim.run.reached == {"a", "b", "c"}
    assert sim.unpreceded == [()]


@pytest.mark.parametrize(
    "dest, msg, why",
    [
        ("a", lambda w: Note(w, "x"), "b -> a: a hears only from its parents and b is not one"),
        ("zz", lambda w: Note(w, "x"), "b -> zz: 'zz' is not a node"),
        ("c", lambda w: Other(w), "b -> c: Other is not one of probe's message types"),
        ("c", lambda w: Note("another-wave", "x"), "b -> c: probe.note of wave 'another-wave'"),
        ("c", lambda w: Note(w, "far too long"), "b -> c: probe.note field text is longer than 8 characters"),
        ("c", lambda w: Roll(w, ["a", "b", "c"]), "b -> c: probe.roll field names has 3 items, more than 2"),
        ("c", lambda w: Roll(w, ["a", "x"]), "b -> c: probe.roll field names names 'x', not a node of the cluster"),
    ],
)
def test_a_send_the_receiver_would_not_accept_is_refused(dest, msg, why):
    class Rogue(Flood):
        def receive(self, sender, m):
            if self.node.me == "b":
                self.node.send(dest, msg(self.wave))
            super().receive(sender, m)

    sim = run(Rogue)
    assert sim.refused[0].startswith(why)
    assert sim.violations[0].startswith("refused send " + why)
    assert sim.run.messages == 2  # the refused one was not sent


def test_a_neighbours_kind_may_send_against_an_edge():
    class Back(Base):
        hears_from = "neighbours"

        def start(self):
            self.node.send("b", Note(self.wave, "x"))

        def receive(self, sender, msg):
            if self.node.me == "b":
                self.node.send("a", Note(self.wave, "back"))
            else:
                self.node.decide()

    sim = run(Back)
    assert sim.violations == [] and sim.run.per_channel == {("a", "b"): 1, ("b", "a"): 1}


def test_a_second_decision_is_recorded_and_a_violation():
    class Twice(Flood):
        def receive(self, sender, msg):
            super().receive(sender, msg)
            self.node.decide("again")

    sim = run(Twice, dup=0.0)
    assert ("b", "again") in sim.run.decisions
    assert "c decided more than once" in sim.violations


class Timer(Base):
    """a sets a deadline 5 ms ahead and sends to b, which answers; on the answer a sets
    another 7 ms ahead (within an event, the last call counts too). a decides when the
    deadline comes."""

    hears_from = "neighbours"

    def start(self):
        self.node.set_deadline(self.node.now + 0.004)
        self.node.set_deadline(self.node.now + 0.005)
        self.node.send("b", Note(self.wave, "x"))

    def receive(self, sender, msg):
        if self.node.me == "b":
            self.node.send("a", Note(self.wave, "x"))
        else:
            self.answered = self.node.now
            self.node.set_deadline(self.node.now + 0.007)

    def expire(self):
        self.node.decide({"late": round(self.node.now - self.answered, 9)})


PAIR = Graph(("a", "b"), (("a", "b"),))


def test_a_deadline_is_a_timer_event_and_a_later_one_replaces_it():
    sim = run(Timer, graph=PAIR)
    assert sim.violations == []
    assert sim.run.decisions == [("a", {"late": 0.007})]  # the 5 ms deadline (before 3 ms of hops) never fired
    assert sim.events == 5 and sim.decision_times[0] > 5.0  # start, 2 messages, 2 timers (the first idle)


def test_a_cancelled_deadline_never_fires():
    class Cancel(Timer):
        def receive(self, sender, msg):
            super().receive(sender, msg)
            if self.node.me == "a":
                self.node.set_deadline(None)

    sim = run(Cancel, graph=PAIR)
    assert sim.run.decisions == [] and sim.events == 4  # the 5 ms timer comes, and does nothing


def test_an_event_that_raises_changes_nothing():
    class Half(Flood):
        def receive(self, sender, msg):
            self.node.send("c", Note(self.wave, "x"))
            self.node.decide("half")
            self.node.set_deadline(0.0)
            if self.node.me == "b":
                raise WaveError("b: not now")
            super().receive(sender, msg)

    sim = run(Half)
    assert sim.rejected == ["b: not now"]
    assert sim.run.messages == 1 and sim.run.decisions == []  # a -> b only
    assert sim.violations == ["rejected: b: not now"]


def test_anything_else_a_kind_raises_is_contained_and_a_violation():
    class Buggy(Flood):
        def receive(self, sender, msg):
            self.node.send("c", Note(self.wave, "x"))
            return {}["missing"]

    sim = run(Buggy)
    assert sim.run.messages == 1
    assert sim.errors == ["probe raised KeyError at b: 'missing'"] and sim.violations == sim.errors


def test_a_finished_instance_is_forgotten_and_late_messages_dropped():
    class Once(Base):
        def start(self):
            for _ in range(3):
                self.node.send("b", Note(self.wave, "x"))

        def receive(self, sender, msg):
            self.node.decide()  # would decide three times, were b not forgotten

        @property
        def finished(self):
            return self.node.me == "b"

    sim = run(Once, graph=Graph(("a", "b"), (("a", "b"),)))
    assert sim.violations == [] and sim.run.decisions == [("b", None)] and sim.dropped == 2


def test_the_event_limit_cuts_a_run_short():
    class PingPong(Base):
        hears_from = "neighbours"

        def start(self):
            self.node.send("b", Note(self.wave, "x"))

        def receive(self, sender, msg):
            self.node.send(sender, Note(self.wave, "x"))

    sim = run(PingPong, graph=Graph(("a", "b"), (("a", "b"),)), max_events=50)
    assert sim.run.complete is False and sim.events == 50
    assert sim.violations[0].startswith("stopped at the limit: 50 events handled")


def test_dependence_is_a_violation_only_for_a_kind_that_claims_it():
    class Hasty(Flood):
        def start(self):
            self.node.decide()
            super().start()

    assert run(Hasty).violations == []
    assert run(Hasty).unpreceded[0] == ("b", "c")

    class Claims(Hasty):
        dependence = True

    assert run(Claims).violations == [
        "a decided before any event at b, c (a wave's decision follows an event at every node)"
    ]


def test_sample_and_enqueue():
    class Worker(Flood):
        def receive(self, sender, msg):
            self.node.decide({"sample": self.node.sample(), "tasks": self.node.enqueue(2, 0.5)})

    sim = run(Worker, graph=Graph(("a", "b"), (("a", "b"),)))
    ((node, result),) = sim.run.decisions
    assert result["sample"]["node"] == "b" and result["sample"]["sampled_at"] == pytest.approx(
        sim.decision_times[0] / 1000
    )
    assert [t for _, t, _ in sim.tasks] == result["tasks"] and len(set(result["tasks"])) == 2


def test_start_parameters_and_initiators_are_checked():
    class Param(Flood):
        params = {"k": Int(1, 5)}
        defaults = {"k": 2}

    assert run(Param).params == {"k": 2}
    assert run(Param, params={"k": 5}).params == {"k": 5}
    with pytest.raises(BadInput, match="start parameter k must be 1..5, got 6"):
        run(Param, params={"k": 6})
    with pytest.raises(BadInput, match="initiator 'q' is not a node"):
        run(Flood, initiators=("q",))
    with pytest.raises(BadInput, match="probe has one initiator, got 2: a, b"):
        run(Flood, initiators=("a", "b"))


def test_refuse_stops_the_run_with_its_sentence():
    class Picky(Flood):
        @classmethod
        def refuse(cls, graph):
            return "not a ring: too short"

    with pytest.raises(Refused, match="probe cannot run on this topology: not a ring: too short") as err:
        run(Picky)
    assert err.value.exit_code == 1


def test_same_seed_same_run_other_seed_other_timing():
    from daemon.topogen import generate

    topology = generate(30, "ring", 4)
    first = simulate_wave("election", topology, seed=11, dup=0.2)
    again = simulate_wave("election", topology, seed=11, dup=0.2)
    other = simulate_wave("election", topology, seed=12, dup=0.2)
    assert (first.run, first.decision_times, first.duplicates) == (again.run, again.decision_times, again.duplicates)
    assert first.run.messages == other.run.messages  # the arrangement fixes the count
    assert first.decision_times != other.decision_times


def test_kinds_by_name():
    assert list(kinds())[:7] == [
        "echo",
        "finn",
        "tarry",
        "tree",
        "phase",
        "election",
        "termination",
    ]  # then third-party kinds
    assert kind_named("phase").name == "phase"
    with pytest.raises(
        BadInput, match="unknown wave kind 'tary' \\(did you mean 'tarry'\\?\\); known: echo, finn, tarry"
    ):
        kind_named("tary")


@pytest.mark.parametrize(
    "bound, good, bad, why",
    [
        (Text(3), "abc", "abcd", "is longer than 3 characters"),
        (Int(0, 9), 9, True, "must be an integer, got bool"),
        (Num(0, 1), 0.5, float("nan"), "must be a finite number in (0, 1], got nan"),
        (Flag(), False, 0, "must be a boolean, got int"),
        (Names(2), ["a"], ["a", 3], "must hold node names (strings of at most 256 characters)"),
        (Items(1), [1], [1, 2], "has 2 items, more than 1"),
        (Blob(2), b"ab", "ab", "must be bytes, got str"),
    ],
)
def test_bounds(bound, good, bad, why):
    assert bound_problem(bound, good) is None
    assert bound_problem(bound, bad) == why


@pytest.mark.parametrize(
    "kind, shape, params",
    [
        ("tarry", "dag", {}),
        ("tarry", "strong", {}),
        ("tree", "tree", {}),
        ("phase", "strong", {"D": 39}),
        ("phase", "ring", {"D": 39}),
        ("election", "ring", {}),
    ],
)
def test_sweep_over_the_topologies_ctl_generates(kind, shape, params):
    """40-node topologies as ``ctl sim wave --nodes 40 --shape S --seed S`` makes them
    (English names, so the election's order is the words'), each run passing its checks;
    a failure names that very command."""
    from daemon.sim.graph import generated

    for seed in range(15):
        sim = simulate_wave(kind, generated(40, shape, seed), params=params, seed=seed, dup=0.1)
        extra = "".join(f" --param {k}={v}" for k, v in params.items())
        assert sim.violations == [], (
            f"replay: ctl sim wave {kind} --nodes 40 --shape {shape} --seed {seed}{extra} --dup 0.1"
        )
