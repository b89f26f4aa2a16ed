"""A link taken over at the far end heals: real node cores of the seed topology, every
message framed and parsed as the daemon does (daemon/wire.py), over links a test can cut
the way ROUTER_HANDOVER cuts them (daemon/node.py): a stranger connecting under a node's
name at a peer's inbox leaves that node's own connection there dead — what it sends is
lost, and it notices nothing — until it reopens the link (the ``Reconnect`` effect,
daemon/core/node.py).

The case that used to stay broken: the child's link to its father. In an echo from root
the child (subserviate) hears first from its father (tubularia), never waits on it, and
so never gives up on it and never reopens that link; the father gives up on the child
and reopens its own link to the child, which was not the broken one. The father's RELINK
tells the child to reopen its link too.
"""

from __future__ import annotations

from daemon import wire
from daemon.core import messages as m
from daemon.core.node import NodeConfig, NodeCore, Reconnect, Reply, Send
from daemon.core.waves import new_wave_id
from tests import wavemsgs as W
from tests.node.hostile import EPOCH, NOW, SEED

OP = b"op-1"
TIMEOUT = 2.0  # the operator's budget for one echo


class Net:
    """The cores of SEED, each message delivered at once (in order, breadth first), but
    none on a cut link: (sender, receiver) pairs whose sender's connection was taken over
    at the receiver. A sender's Reconnect toward the receiver heals the pair."""

    def __init__(self):
        self.cores = {name: NodeCore(NodeConfig.of(SEED, name, 0), EPOCH, NOW) for name in SEED.names}
        self.cut: set[tuple[str, str]] = set()
        self.lost = 0
        self.results: list = []

    def run(self, name: str, effects: list, now: float) -> None:
        queue = [(name, effects)]
        while queue:
            src, effects = queue.pop(0)
            for e in effects:
                if type(e) is Reconnect:
                    self.cut.discard((src, e.peer))
                elif type(e) is Reply:
                    self.results.append(wire.parse(wire.pack(e.msg, 1))[1])
                elif type(e) is Send:
                    if (src, e.dest) in self.cut:
                        self.lost += 1
                        continue
                    epoch, msg = wire.parse(wire.pack(e.msg, EPOCH))
                    queue.append((e.dest, self.cores[e.dest].handle(src.encode(), epoch, msg, now)))

    def echo(self, k: int, now: float) -> list[str]:
        """One echo from root, run to its deadline; the nodes missing from its result."""
        w = new_wave_id("e", int(now * 1e9), f"r{k}")
        self.results.clear()
        self.run("root", self.cores["root"].handle(OP, 1, W.EchoStart(w, False, TIMEOUT), now), now)
        end = now + TIMEOUT
        while not self.results:  # tick every core at its deadlines until root decides
            due = min(min(c.next_deadline() for c in self.cores.values()), end)
            for name, core in self.cores.items():
                self.run(name, core.tick(due), due)
            assert due < end, "root never decided"
        (result,) = self.results
        present = {name for name, _father, _state in wire.unpack_entries(result.result)}
        return sorted(set(SEED.names) - present)


def test_a_childs_link_to_its_father_taken_over_heals_by_the_next_wave():
    net = Net()
    assert net.echo(0, NOW) == []
    net.cut.add(("subserviate", "tubularia"))  # a stranger took subserviate's name at tubularia
    assert net.echo(1, NOW + 10) == ["pical", "subserviate"]  # its ECHO was lost
    assert net.lost == 1
    # tubularia gave up on subserviate: it reopened its own link and sent a RELINK, which
    # made subserviate reopen the cut one
    assert ("subserviate", "tubularia") not in net.cut
    for k in range(2, 5):
        assert net.echo(k, NOW + 10 * k) == []
    assert all(core.stats["internal"] == 0 for core in net.cores.values())


def test_a_relink_survives_the_wire():
    assert wire.parse(wire.pack(m.Relink(), EPOCH)) == (EPOCH, m.Relink())
