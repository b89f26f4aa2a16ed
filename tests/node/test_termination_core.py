"""The termination detector inside real node cores (daemon/core/node.py) over the real
wire, driven in-process on the seed tree: a detection only after the last task, a long
task that holds the token past the node's quiet-wave memory (WAVE_TTL), a submit that
blackens, a restarted node named. The faults and the many seeds are
tests/sim/test_termination.py's."""

from __future__ import annotations

import heapq

from daemon import wire
from daemon.core import messages as m
from daemon.core.node import WAVE_TTL, NodeConfig, NodeCore, Reply, Send
from daemon.core.waves import new_wave_id
from tests.node.hostile import EPOCH, NOW, SEED

OP = b"op-term"
HOP = 0.002  # seconds a message takes


class Cluster:
    """Every node of SEED as a NodeCore; messages through wire.pack/parse after HOP
    seconds; each core ticked at its next deadline; replies to OP kept in order."""

    def __init__(self):
        self.t = NOW
        self.cores = {n: NodeCore(NodeConfig.of(SEED, n), EPOCH, NOW) for n in SEED.names}
        self.queue: list = []
        self.seq = 0
        self.replies: list = []  # (time, node, reply)

    def push(self, at, item):
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, item))

    def effects(self, name, effects):
        for e in effects:
            if type(e) is Send:
                self.push(self.t + HOP, ("msg", name, e.dest, wire.pack(e.msg, EPOCH)))
            elif type(e) is Reply:
                _, msg = wire.parse(wire.pack(e.msg, EPOCH))
                self.replies.append((self.t, name, msg))

    def operator(self, name, msg):
        _, msg = wire.parse(wire.pack(msg, 0))
        self.effects(name, self.cores[name].handle(OP, 0, msg, self.t))

    def run_until(self, end, stop=lambda: False):
        while self.t < end and not stop():
            due = min((c.next_deadline(), n) for n, c in self.cores.items())
            if self.queue and self.queue[0][0] <= due[0]:
                at, _, (_, src, dst, frame) = heapq.heappop(self.queue)
                self.t = max(self.t, at)
                epoch, msg = wire.parse(frame)
                self.effects(dst, self.cores[dst].handle(src.encode(), epoch, msg, self.t))
            else:
                self.t = max(self.t, due[0])
                self.effects(due[1], self.cores[due[1]].tick(self.t))

    def decisions(self, wave):
        return [(t, n, r.result) for t, n, r in self.replies if type(r) is m.WaveDecided and r.wave == wave]


def start(c, initiator="root", timeout=600.0, k=1):
    wave = new_wave_id("term", int(c.t * 1e9) + k, f"t{k}")
    c.operator(initiator, m.WaveStart(wave, "termination", {"lost": 5.0}, timeout))
    return wave


def test_a_task_longer_than_the_wave_memory_holds_the_token_and_the_detection_follows_it():
    c = Cluster()
    leaf = "pical"  # four hops from the root: the root hears nothing while pical holds the token
    c.operator(leaf, m.Submit(1, 3 * WAVE_TTL, "long"))
    wave = start(c)
    c.run_until(NOW + 10 * WAVE_TTL, lambda: bool(c.decisions(wave)))
    (at, node, result), *more = c.decisions(wave)
    assert not more and node == "root" and result["terminated"] is True, c.decisions(wave)
    assert at >= NOW + 3 * WAVE_TTL  # not before the task ended
    assert all(core.board.is_idle() for core in c.cores.values())


def test_a_submit_during_the_wave_is_waited_for():
    c = Cluster()
    wave = start(c)
    c.run_until(NOW + 0.005)  # the first round under way
    submitted = c.t
    c.operator("pical", m.Submit(2, 1.0, "late"))
    c.run_until(NOW + 60, lambda: bool(c.decisions(wave)))
    (at, node, result), = c.decisions(wave)
    assert result["terminated"] is True and at >= submitted + 1.0, (at - submitted, result)
    assert all(core.board.is_idle() for core in c.cores.values())


def test_a_restarted_node_is_reported_by_the_node_that_handed_it_the_token():
    c = Cluster()
    leaf = "pical"  # four hops from the root: the root hears nothing while pical holds the token
    c.operator(leaf, m.Submit(1, 2.0, "held"))
    wave = start(c)
    c.run_until(NOW + 1.0)
    config = c.cores[leaf].config  # the leaf restarts: a later epoch, its board from nothing
    c.cores[leaf] = NodeCore(config, int((c.t + 0.5) * 1e9), c.t)
    c.run_until(NOW + 30, lambda: bool(c.decisions(wave)))
    (_, node, result), = c.decisions(wave)
    assert result["terminated"] is False and result["reason"] == "lost" and result["node"] == leaf, result
    assert node in SEED.neighbours(leaf)
