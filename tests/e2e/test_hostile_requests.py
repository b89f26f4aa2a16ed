"""A hostile local client on a real node's socket: requests the node must refuse with a
named error (``bad-submit``, ``bad-move``, ``bad-trace``), a trace request under a node's
name, and frames past the size limit, which the
socket drops without the node noticing. Each time the node stays a working member of
the cluster. (Garbage frames: tests/e2e/test_waves.py; the checks of each frame on
their own: tests/core/test_wire.py.)"""

from __future__ import annotations

import math
import time

import pytest
import zmq

from daemon import wire
from daemon.operator import Operator
from daemon.topology import load

pytestmark = pytest.mark.e2e

ANSWER_WAIT_MS = 30_000  # bound on waiting for a reply: generous, the machine is shared


class Client:
    """A DEALER on one node's operator socket, speaking the wire format by hand."""

    def __init__(self, topology, node: str, ident: bytes = b"hostile-test"):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.IDENTITY, ident)
        self.sock.connect(topology.operator_endpoint(node))

    def ask(self, frame: bytes) -> dict:
        self.sock.send(frame)
        assert self.sock.poll(ANSWER_WAIT_MS), "the node stopped answering"
        return wire.decode(self.sock.recv())

    def close(self):
        self.ctx.destroy(linger=0)


@pytest.fixture
def seed(cluster_env):
    # without authentication, so that a plain DEALER reaches the node's checks (what CURVE
    # refuses before them: tests/e2e/test_security.py)
    topology = load(cluster_env.start(task_time=60.0, security="none", record=True))
    client = Client(topology, "root")
    yield topology, client
    client.close()


def test_bad_submits_are_refused_by_code(seed):
    topology, client = seed
    # a well-formed request for no task: refused by the node
    reply = client.ask(wire.encode("submit", 0, id=1, tasks=0, cost=1.0, label="x"))
    assert reply["t"] == "error" and reply["code"] == "bad-submit", reply
    assert reply["text"] == "root: tasks must be 1..100000, got 0", reply
    # out of the wire's ranges (daemon/core/messages.py): malformed, naming the field
    for tasks, cost, field in ((-1, 1.0, "tasks"), (100_001, 1.0, "tasks"), (1, 0.0, "cost"), (1, -2.0, "cost"),
                               (1, 86_401.0, "cost"), (1, math.nan, "cost"), (1, math.inf, "cost")):
        reply = client.ask(wire.encode("submit", 0, id=1, tasks=tasks, cost=cost, label="x"))
        assert reply["t"] == "error" and reply["code"] == "malformed", (tasks, cost, reply)
        assert reply["text"].startswith(f"submit: field '{field}' must be "), reply
    # the limits themselves are accepted
    ok = client.ask(wire.encode("submit", 0, id=1, tasks=2, cost=86_400, label=""))
    assert ok["t"] == "submit.ok" and len(ok["ids"]) == 2
    with Operator(topology, timeout=30) as op:
        root = next(n for n in op.echo(detail=True)["nodes"] if n["name"] == "root")
    assert root["submitted"] == 2  # nothing of the refused requests was enqueued


def test_bad_moves_are_refused_by_code(seed):
    topology, client = seed
    submitted = client.ask(wire.encode("submit", 0, id=1, tasks=8, cost=60, label="x"))
    queued = submitted["ids"][4:]  # root has 4 cpus: the last four wait
    for dest in ("nosuchnode", "root", ""):
        reply = client.ask(wire.encode("move", 0, id=1, move_id="m1", dest=dest, tasks=queued, count=0))
        assert reply["t"] == "error" and reply["code"] == "bad-move", (dest, reply)
        assert reply["text"] == f"root: cannot move tasks to {dest!r}"
    # ids that are not strings, unknown or running are left out; a known queued one moves
    reply = client.ask(wire.encode("move", 0, id=1, move_id="m2", dest="affixed",
                                   tasks=[1, None, "unknown", submitted["ids"][0], queued[0]], count=0))
    assert reply == {"v": 2, "t": "move.ok", "e": reply["e"], "move_id": "m2", "moved": [queued[0]], "count": 1,
                     "id": 1}
    with Operator(topology, timeout=30) as op:
        pong = op.ping(["root"])["root"]
    assert pong is not None and pong["stats"]["garbage"] == 0


def test_trace_requests_with_garbage_fields_or_under_a_nodes_name_are_refused(seed):
    topology, client = seed
    for fields, code, text in ((dict(wave_ids=[], max_steps=-1), "malformed", "trace.get: field 'max_steps' must be in"),
                               (dict(wave_ids=[], max_steps=2.5), "malformed", "trace.get: field 'max_steps' must be int"),
                               (dict(wave_ids=["w"] * 17, max_steps=1), "malformed", "trace.get: field 'wave_ids' has 17 items"),
                               (dict(wave_ids=[7], max_steps=1), "bad-trace", "root: trace.get: each of wave_ids")):
        reply = client.ask(wire.encode("trace.get", 0, id=1, **fields))
        assert reply["t"] == "error" and reply["code"] == code and reply["text"].startswith(text), (fields, reply)
    ok = client.ask(wire.encode("trace.get", 0, id=1, wave_ids=[], max_steps=1))
    assert ok["t"] == "trace" and ok["node"] == "root" and len(wire.unpack_steps(ok["steps"])) == 1, ok
    # under a neighbour's routing id: refused at the operator socket, which takes no
    # node's name, and told why (daemon/security.py Gate)
    forger = Client(topology, "root", ident=b"affixed")
    try:
        reply = forger.ask(wire.encode("trace.get", time.time_ns(), id=1, wave_ids=[], max_steps=10))  # a plausible epoch
        assert reply["t"] == "error" and reply["code"] == "unauthorized", reply
        assert "'affixed' is a node's name" in reply["text"], reply
        pong = client.ask(wire.encode("ping", 0, id=9))
        assert pong["stats"]["unauthorized"] == 1 and pong["stats"]["refused"] == 0, pong
        assert pong["stats"]["garbage"] == 4, pong  # 3 malformed, 1 bad-trace
    finally:
        forger.close()
    with Operator(topology, timeout=30) as op:
        assert len(op.echo()["nodes"]) == 8


def test_frames_past_the_size_limit_are_dropped_by_the_socket(seed):
    topology, client = seed
    # Exactly the limit: a valid frame, answered.
    overhead = len(wire.encode("ping", 0, id=1, pad=b"x" * 70_000)) - 70_000
    exact = wire.encode("ping", 0, id=1, pad=b"x" * (wire.MAX_FRAME - overhead))
    assert len(exact) == wire.MAX_FRAME
    reply = client.ask(exact)
    assert reply["t"] == "pong" and reply["id"] == 1, reply
    # One byte more: ZMQ_MAXMSGSIZE makes libzmq drop the connection; the DEALER
    # reconnects by itself and the next request is answered.
    over = wire.encode("ping", 0, id=2, pad=b"x" * (wire.MAX_FRAME - overhead + 1))
    client.sock.send(over)
    reply = client.ask(wire.encode("ping", 0, id=3))
    assert reply["t"] == "pong" and reply["id"] == 3, reply  # not 2: that frame never arrived
    assert reply["stats"]["garbage"] == 0
    with Operator(topology, timeout=30) as op:
        assert len(op.echo()["nodes"]) == 8


def test_every_reply_and_error_carries_its_requests_id(seed):
    topology, client = seed
    assert client.ask(wire.encode("ping", 0, id=11))["id"] == 11
    ok = client.ask(wire.encode("submit", 0, id=12, tasks=1, cost=1.0, label="x"))
    assert ok["t"] == "submit.ok" and ok["id"] == 12, ok
    refused = client.ask(wire.encode("submit", 0, id=13, tasks=0, cost=1.0, label="x"))  # the core's refusal
    assert refused["t"] == "error" and refused["code"] == "bad-submit" and refused["id"] == 13, refused
    malformed = client.ask(wire.encode("submit", 0, id=14, tasks=1, cost=-1.0, label="x"))  # the edge's
    assert malformed["t"] == "error" and malformed["code"] == "malformed" and malformed["id"] == 14, malformed
    trace = client.ask(wire.encode("trace.get", 0, id=15, wave_ids=[], max_steps=1))
    assert trace["t"] == "trace" and trace["id"] == 15, trace
    moved = client.ask(wire.encode("move", 0, id=16, move_id="m9", dest="affixed", tasks=[], count=0))
    assert moved["t"] == "move.ok" and moved["id"] == 16, moved
    # an echo started with a Finn wave id: its tag is not the kind's
    start = client.ask(wire.encode("wave.start", 0, id=17, wave=wire.new_wave_id("f", time.time_ns(), "x"),
                                   kind="echo", params={"detail": False}, timeout=5.0))
    assert start["t"] == "error" and start["code"] == "bad-wave" and start["id"] == 17, start
    assert "is not a echo wave id (its first part must be 'e')" in start["text"], start


def test_an_operator_sending_a_malformed_node_message_is_told_it_may_not_not_the_fields(seed):
    """Who may send a type is checked before its fields: what the operator is told of a
    node message is the same whatever its fields, and names none of them."""
    topology, client = seed
    texts = set()
    for kind, fields in (("transfer", {}), ("transfer", dict(move_id=5, tasks="x")), ("ack", dict(accepted=1)),
                         ("forget", {}), ("wave", dict(msg="explore")), ("wave", dict(msg="explore", body=7))):
        reply = client.ask(wire.encode(kind, 0, id=21, **fields))
        assert reply["t"] == "error" and reply["code"] == "unauthorized" and reply["id"] == 21, (kind, fields, reply)
        assert "field" not in reply["text"] and "move_id" not in reply["text"], reply
        texts.add(reply["text"])
    assert texts == {f"root: an operator cannot send {k!r}" for k in ("transfer", "ack", "forget", "explore")}, texts
