"""The node driver's consistent cut, over every delivery order hypothesis can think of.

The e2e tests check the accounting rule — submitted = done + queued + running + in
flight — at every echo, but real sockets explore few interleavings. Here the real
``NodeDaemon`` message handlers run in one process: each node's outgoing frames go into
one shared pool instead of a socket, and the test delivers them in any order (a superset
of ZeroMQ's per-connection FIFO), mixing in new echo waves and task moves. At every echo
decision the samples must add up exactly. This is how the missing Lai–Yang tag on FORGET
shows up in seconds instead of once in several CI runs.
"""

from __future__ import annotations

import itertools
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon import wire
from daemon.core.tasks import account
from daemon.node import NodeDaemon
from daemon.topology import loads

TOPOLOGY = """
[cluster]
name = "cut"
base_port = 7900
[[node]]
name = "root"
cpus = 2
[[node]]
name = "left"
cpus = 2
parents = ["root"]
[[node]]
name = "right"
cpus = 4
parents = ["root"]
[[node]]
name = "leaf"
cpus = 1
parents = ["left", "right"]
"""
OPERATOR = b"op"
TASKS = 12  # submitted at "leaf" (1 cpu): 1 runs, 11 queue and can move


class PooledNode(NodeDaemon):
    """A NodeDaemon whose frames go to a shared pool, not to sockets."""

    def __init__(self, topology, name, pool, replies):
        super().__init__(topology, name)
        self.pool, self.replies = pool, replies

    def send_peer(self, name, frame):
        self.pool.append((self.name, name, frame))

    def reply(self, ident, frame):
        assert ident == OPERATOR, ident
        self.replies.append(wire.decode(frame))


actions = st.lists(
    st.one_of(
        st.tuples(st.just("deliver"), st.integers(0, 10_000)),
        st.tuples(st.just("echo"), st.sampled_from(["root", "left", "right", "leaf"])),
        st.tuples(st.just("move"), st.sampled_from(["root", "left", "right"]), st.integers(1, 4)),
    ),
    min_size=5,
    max_size=120,
)


@given(script=actions)
@settings(max_examples=300, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
def test_every_echo_adds_up_whatever_the_delivery_order(script):
    topology = loads(TOPOLOGY)
    pool: list[tuple[str, str, bytes]] = []
    replies: list[dict] = []
    nodes = {n: PooledNode(topology, n, pool, replies) for n in topology.names}
    wave_salt = itertools.count()
    move_salt = itertools.count()

    def from_operator(node, kind, **fields):
        nodes[node].handle([OPERATOR, wire.encode(kind, 0, **fields)])

    try:
        from_operator("leaf", "submit", tasks=TASKS, cost=3600.0, label="cut")
        queued = list(replies.pop()["ids"])[1:]  # the first one runs
        checked = 0

        def check_results():
            nonlocal checked
            for msg in replies:
                if msg["t"] == "echo.result":
                    states = [state for _, _, state in wire.unpack_entries(msg["entries"])]
                    books = account(states)
                    assert books["balanced"] and books["submitted"] == TASKS, (books, states)
                    checked += 1
            replies.clear()

        for action in script + [("deliver", 0)] * 400:  # then drain the pool
            if action[0] == "deliver":
                if pool:
                    src, dst, frame = pool.pop(action[1] % len(pool))
                    nodes[dst].handle([src.encode(), frame])
            elif action[0] == "echo":
                wave = wire.new_wave_id("e", time.time_ns(), f"t{next(wave_salt)}")
                from_operator(action[1], "echo.start", wave=wave, detail=True)
            elif action[0] == "move" and queued:
                ids, queued[:] = queued[: action[2]], queued[action[2]:]
                from_operator("leaf", "move", move_id=f"m-{next(move_salt)}", dest=action[1], tasks=ids)
            check_results()
        assert not pool
        # drained: every move acknowledged and forgotten, every task counted once
        for node in nodes.values():
            sample = node.board.sample(time.time())
            assert sample["outgoing"] == [] and sample["unconfirmed"] == [], (node.name, sample)
        assert sum(n.board.submitted for n in nodes.values()) == TASKS
        assert sum(len(n.board.queued) + len(n.board.running) for n in nodes.values()) == TASKS
    finally:
        for node in nodes.values():
            node.close()
