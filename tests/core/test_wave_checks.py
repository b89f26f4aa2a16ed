"""Each wave kind's ``check()`` (daemon/core/echo.py, finn.py, tarry.py, tree.py, phase.py,
election.py) on
runs written by hand: a correct one passes, and each way of breaking it is named by the
rule it breaks. A run cut short (``complete`` false) is held to safety alone."""

from __future__ import annotations

from daemon.core.echo import EchoWave
from daemon.core.election import ElectionWave
from daemon.core.finn import FinnWave
from daemon.core.phase import PhaseWave
from daemon.core.tarry import TarryWave
from daemon.core.tree import TreeWave
from daemon.core.wave import Graph, WaveRun

# a - b - c, plus c - a: a triangle as a -> b, b -> c, c -> a
TRIANGLE = Graph(("a", "b", "c"), (("a", "b"), ("b", "c"), ("c", "a")))


def run(initiators, channels, decisions, reached=("a", "b", "c"), complete=True):
    return WaveRun(tuple(initiators), dict(channels), list(decisions), set(reached), complete)


def tarry_run(**change):
    channels = {(a, b): 1 for a, b in TRIANGLE.edges} | {(b, a): 1 for a, b in TRIANGLE.edges}
    return run(("a",), change.pop("channels", channels), change.pop("decisions", [("a", {"hops": 6})]), **change)


def test_tarry_check():
    assert TarryWave.check(TRIANGLE, tarry_run()) == []
    twice = tarry_run().per_channel | {("a", "b"): 2}
    assert TarryWave.check(TRIANGLE, tarry_run(channels=twice)) == [
        "the token crossed a -> b 2 times; R1 allows once",
        "7 messages, expected exactly 2|E| = 6",
    ]
    missing = {c: k for c, k in tarry_run().per_channel.items() if c != ("c", "a")}
    assert TarryWave.check(TRIANGLE, tarry_run(channels=missing)) == [
        "the token never crossed c -> a (1 directed channels unused)",
        "5 messages, expected exactly 2|E| = 6",
    ]
    assert TarryWave.check(TRIANGLE, tarry_run(decisions=[("b", {"hops": 6})])) == [
        "decided at b, not at the initiator a",
        "the initiator a did not decide",
    ]
    assert TarryWave.check(TRIANGLE, tarry_run(decisions=[("a", {"hops": 5})])) == [
        "the initiator decided with {'hops': 5}, expected hops 2|E| = 6"
    ]
    assert TarryWave.check(TRIANGLE, tarry_run(reached=("a", "b"))) == ["the token never reached c"]
    # cut short: nothing owed yet, but what was done must be right
    assert TarryWave.check(TRIANGLE, tarry_run(channels={("a", "b"): 1}, decisions=[], complete=False)) == []
    assert TarryWave.check(TRIANGLE, tarry_run(channels={("a", "b"): 2}, decisions=[], complete=False)) == [
        "the token crossed a -> b 2 times; R1 allows once"
    ]
    assert TarryWave.check(TRIANGLE, run(("a", "b"), {}, [])) == [
        "2 initiators; Tarry's traversal has exactly one"
    ]


PATH = Graph(("a", "b", "c", "d"), (("a", "b"), ("b", "c"), ("d", "c")))  # a - b - c - d


def test_tree_check():
    good = {("a", "b"): 1, ("d", "c"): 1, ("b", "c"): 1, ("c", "b"): 1}
    deciders = [("b", {"with": "c"}), ("c", {"with": "b"})]
    every = ("a", "b", "c", "d")
    assert TreeWave.check(PATH, run(("a", "d"), good, deciders, every)) == []
    assert TreeWave.check(PATH, run(("a", "d"), good | {("a", "c"): 1}, deciders, every)) == [
        "1 messages from a to c, which are not linked in the tree",
        "node a sent 2 messages; each node sends exactly one",
        "5 messages, expected N = 4",
    ]
    assert TreeWave.check(PATH, run(("a", "d"), good, [("a", {"with": "b"}), ("c", {"with": "b"})], every)) == [
        "the deciders a and c are not neighbours",
        "the deciders a and c did not send to each other: a decided {'with': 'b'}, c decided {'with': 'b'}",
    ]
    assert TreeWave.check(PATH, run(("a", "d"), good, deciders[:1], every)) == ["1 decisions, expected 2"]
    three = [*deciders, ("a", {"with": "b"})]
    assert TreeWave.check(PATH, run(("a", "d"), good, three, every))[0] == (
        "3 decisions (b, c, a); exactly two neighbours decide"
    )
    silent = {("a", "b"): 1, ("b", "c"): 1, ("c", "b"): 1}
    assert TreeWave.check(PATH, run(("a", "d"), silent, deciders, every)) == [
        "3 messages, expected N = 4",
        "1 nodes never sent: d",
    ]
    # a leaf that did not initiate: liveness is not owed
    assert TreeWave.check(PATH, run(("a",), {("a", "b"): 1}, [], ("a", "b"))) == []


RING = Graph(("a", "b", "c", "d"), (("a", "b"), ("b", "c"), ("c", "d"), ("d", "a")))


def test_phase_check():
    d3 = {e: 3 for e in RING.edges}
    all_decide = [(p, {"D": 3}) for p in RING.nodes]
    assert PhaseWave.check(RING, run(("a",), d3, all_decide, RING.nodes)) == []
    assert PhaseWave.check(RING, run(("a",), d3 | {("a", "b"): 4}, all_decide, RING.nodes)) == [
        "4 messages on a -> b, more than D = 3",
        "4 messages on a -> b, expected exactly D = 3 (1 edges off)",
        "13 messages, expected D·|E| = 3·4 = 12",
    ]
    assert PhaseWave.check(RING, run(("a",), d3 | {("b", "a"): 1}, all_decide, RING.nodes)) == [
        "1 messages from b to a, which is not an edge",
        "13 messages, expected D·|E| = 3·4 = 12",
    ]
    assert PhaseWave.check(RING, run(("a",), d3, all_decide[:3], RING.nodes)) == ["1 nodes did not decide: d"]
    assert PhaseWave.check(RING, run(("a",), d3, [*all_decide, ("a", {"D": 3})], RING.nodes)) == [
        "decided more than once: a"
    ]
    mixed = [*all_decide[:3], ("d", {"D": 4})]
    assert PhaseWave.check(RING, run(("a",), d3, mixed, RING.nodes))[0] == "the nodes decided with different D: [3, 4]"
    d2 = {e: 2 for e in RING.edges}
    assert PhaseWave.check(RING, run(("a",), d2, [(p, {"D": 2}) for p in RING.nodes], RING.nodes)) == [
        "D = 2 is below the diameter 3: a decision need not follow an event at every node"
    ]


def test_election_check():
    # ids along the ring: a b c d, rising: 2N - 1 = 7 messages, d leads
    per = {("a", "b"): 1, ("b", "c"): 1, ("c", "d"): 1, ("d", "a"): 4}
    assert ElectionWave.expected_messages(RING) == 7
    assert ElectionWave.check(RING, run(RING.nodes, per, [("d", {"leader": "d"})], RING.nodes)) == []
    assert ElectionWave.check(RING, run(RING.nodes, per, [("c", {"leader": "c"})], RING.nodes)) == [
        "c decided {'leader': 'c'}; only d, the largest name, may decide, as leader",
        "no leader: d did not decide",
    ]
    two = [("d", {"leader": "d"}), ("d", {"leader": "d"})]
    assert ElectionWave.check(RING, run(RING.nodes, per, two, RING.nodes)) == ["2 decisions; exactly one leader"]
    more = per | {("a", "b"): 2}
    assert ElectionWave.check(RING, run(RING.nodes, more, [("d", {"leader": "d"})], RING.nodes)) == [
        "8 messages, expected exactly 7 on this arrangement (2N−1 = 7 .. N(N+1)/2 = 10)"
    ]
    assert ElectionWave.check(RING, run(RING.nodes, per, [], RING.nodes)) == ["no leader: d did not decide"]
    falling = Graph(("d", "c", "b", "a"), (("d", "c"), ("c", "b"), ("b", "a"), ("a", "d")))
    assert ElectionWave.expected_messages(falling) == 10
    assert ElectionWave.expected_messages(Graph(("a",), ())) == 0


def test_echo_check():
    # the triangle both ways round a -> b counts as one link: 2|E| = 6
    both = Graph(TRIANGLE.nodes, (*TRIANGLE.edges, ("b", "a")))
    good = {(a, b): 1 for a, b in TRIANGLE.edges} | {(b, a): 1 for a, b in TRIANGLE.edges}
    decided = [("a", 3)]
    assert EchoWave.check(both, run(("a",), good, decided)) == []
    assert EchoWave.check(TRIANGLE, run(("a",), good | {("a", "b"): 2}, decided)) == [
        "7 messages, expected 2|E| = 6"
    ]
    assert EchoWave.check(TRIANGLE, run(("a", "b"), good, [("b", 3)])) == [
        "decided at ['b'], expected once at the initiator ('a',)"
    ]
    assert EchoWave.check(TRIANGLE, run(("a",), good, [("a", 3), ("a", 3)])) == [
        "decided at ['a', 'a'], expected once at the initiator ('a',)"
    ]
    assert EchoWave.check(TRIANGLE, run(("a",), good, [])) == ["no decision"]
    # only the first initiator may decide, even when more were named
    assert EchoWave.check(TRIANGLE, run(("a", "b"), good, [("a", 3), ("b", 3)])) == [
        "decided at ['a', 'b'], expected once at the initiator ('a',)"
    ]
    # cut short: neither the count nor a decision is owed, but a wrong decider is named
    assert EchoWave.check(TRIANGLE, run(("a",), {("a", "b"): 1}, [], complete=False)) == []
    assert EchoWave.check(TRIANGLE, run(("a",), {}, [("c", 1)], complete=False)) == [
        "decided at ['c'], expected once at the initiator ('a',)"
    ]


def test_finn_check():
    every = [(p, {}) for p in TRIANGLE.nodes]
    assert FinnWave.check(TRIANGLE, run(("a",), {}, every)) == []
    assert FinnWave.check(TRIANGLE, run(("a",), {}, [*every, ("c", {}), ("b", {}), ("c", {})])) == [
        "decided twice: b, c"
    ]
    assert FinnWave.check(TRIANGLE, run(("a",), {}, every[1:2])) == ["undecided: a, c"]
    # cut short: nobody need decide, but nobody decides twice
    assert FinnWave.check(TRIANGLE, run(("a",), {}, [], complete=False)) == []
    assert FinnWave.check(TRIANGLE, run(("a",), {}, every[:1] * 2, complete=False)) == ["decided twice: a"]
