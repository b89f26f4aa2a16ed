"""The operator never blocks on a send: against a node whose queue is full it gives up
at the call's deadline, naming the node (daemon/operator.py, ``Operator._send``). Real
ZeroMQ sockets; no node process: nothing listens at the node's operator port, so the
DEALER's queue fills up to its high-water mark and stays full. And an operator opens
its sockets to every node of a cluster of hundreds (libzmq's socket limit a context)."""

from __future__ import annotations

import socket
import time

import pytest

from daemon import wire
from daemon.errors import UserError
from daemon.operator import Operator, WaveTimeout
from daemon.topology import loads


def silent_topology():
    with socket.socket() as probe:  # a port nothing listens on (free a moment ago)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return loads(f'[cluster]\nname = "mute"\nsecurity = "none"  # the deadline, not the handshake, is under test\n\n[[node]]\nname = "mute"\ncpus = 1\nport = 1\noperator_port = {port}\n')


def test_a_full_queue_ends_the_send_at_its_deadline_naming_the_node():
    with Operator(silent_topology(), timeout=0.3) as op:
        t0 = time.monotonic()
        with pytest.raises(WaveTimeout, match=r"node mute \(tcp://127.0.0.1:\d+\) takes no ping message within 0.3 s") as caught:
            for i in range(100_000):  # far past the high-water mark (1000)
                op._send("mute", "ping", id=i)
        assert caught.value.unreachable == ["mute"]
        assert time.monotonic() - t0 < 10  # one deadline, not one per message
        # the calls built on it answer within their own deadline, never hang
        t0 = time.monotonic()
        assert op.ping(timeout=0.3) == {"mute": None}
        with pytest.raises(WaveTimeout):
            op.echo()
        assert op.finn()["unreachable"] == ["mute"]
        assert time.monotonic() - t0 < 10


def test_a_frame_over_the_limit_is_refused_before_it_is_sent():
    with Operator(silent_topology(), timeout=0.3) as op:
        with pytest.raises(UserError, match=f"exceeds the {wire.MAX_FRAME}-byte frame limit"):
            op._send("mute", "submit", tasks=1, cost=1.0, label="x" * wire.MAX_FRAME)


def test_an_operator_opens_its_socket_and_handshake_monitor_to_each_of_600_nodes(tmp_path):
    """Three ZeroMQ sockets a node with CURVE (the DEALER, its monitor's two PAIRs):
    600 nodes are 1,800, past libzmq's default limit of 1,023 a context. Nothing listens
    at these ports; connecting is asynchronous, so no node process is needed."""
    from daemon import security
    from daemon.topogen import generate

    topology = generate(600, "tree", 1, max_children=2, cpus=(1, 1), name="wide", base_port=20000)
    assert topology.cluster.security == security.CURVE
    security.ensure_keys(tmp_path, topology, list(topology.names))
    with Operator(topology, timeout=0.3, run_dir=tmp_path) as op:
        for name in topology.names:
            op._sock(name)
        assert len(op.socks) == len(op.monitors) == 600
