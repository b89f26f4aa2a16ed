"""The flight recorder (daemon/trace/recorder.py): its bounded ring, its steps as the
trace model's dicts, the decisions it finds, what it selects, and the merged trace.

Waves run over real node cores of the seed tree, every message framed and parsed by
daemon/wire.py as between daemons (an echo's entries travel as byte streams, as there),
each step recorded as daemon/node.py records it."""

from __future__ import annotations

import json

import pytest

from daemon import wire
from daemon.core import messages as m
from daemon.core.node import NodeConfig, NodeCore, Reply, Send, ShowTrace, routing_ids
from daemon.core.waves import new_wave_id
from daemon.trace.recorder import Recorder, StepError, check_step, kind_of, merge, round_of
from tests.node.hostile import EPOCH, NOW, SEED
from tests import wavemsgs as W

OP = b"op-1"
NAMES = routing_ids(frozenset(SEED.names))
LINKS = sum(len(SEED.neighbours(n)) for n in SEED.names) // 2  # 7 on the seed tree


class Cluster:
    """Every node of the seed tree, a core and a recorder each, and a FIFO network."""

    def __init__(self):
        self.cores = {n: NodeCore(NodeConfig.of(SEED, n), EPOCH + k, NOW) for k, n in enumerate(SEED.names)}
        self.recorders = {n: Recorder(n, EPOCH + k, NAMES) for k, n in enumerate(SEED.names)}
        self.queue: list = []  # (to, from routing id, frame)
        self.replies: list = []
        self.t = NOW

    def step(self, node: str, sender: bytes, frame: bytes) -> None:
        epoch, msg = wire.parse(frame)
        self.t += 0.001
        effects = self.cores[node].handle(sender, epoch, msg, self.t)
        for e in effects:
            if type(e) is Send:
                self.queue.append((e.dest, node.encode(), wire.pack(e.msg, self.cores[node].epoch)))
            elif type(e) is Reply:
                self.replies.append(wire.decode(wire.pack(e.msg, 1)))
        self.recorders[node].record(self.t, 0.0005, sender, epoch, msg, effects, self.cores[node].board.queue_length)

    def run(self, node: str, kind: str, /, **fields) -> None:
        self.step(node, OP, wire.encode(kind, EPOCH, **fields))
        while self.queue:
            self.step(*self.queue.pop(0))

    def steps(self, wave: str) -> list[dict]:
        return [s for r in self.recorders.values() for s in r.select([wave])[0]]


def wave(kind: str = "e", k: int = 0) -> str:
    return new_wave_id(kind, int(NOW * 1e9) + k, f"r{k}")


def test_the_ring_keeps_the_newest_steps_and_counts_those_it_dropped():
    rec = Recorder("root", EPOCH, NAMES, size=4)
    for k in range(10):
        rec.record(NOW + k, 0.001, OP, EPOCH, m.Ping(k), [], 0)
    assert len(rec.ring) == 4
    steps, dropped = rec.select()
    assert [s["seq"] for s in steps] == [6, 7, 8, 9] and dropped == 6
    steps, dropped = rec.select((), 1)  # max_steps leaves the older ones out, counted too
    assert [s["seq"] for s in steps] == [9] and dropped == 9
    assert rec.select((), 0) == ([], 10)


def test_a_step_is_the_models_dict():
    c = Cluster()
    w = wave()
    c.run("root", "wave.start", wave=w, kind="echo", params={"detail": False}, timeout=5.0, id=1)
    root = c.recorders["root"].select()[0]
    assert root[0] == {
        "node": "root", "inc": EPOCH, "seq": 0, "t": NOW + 0.001, "dur": 0.0005,
        "in": {"from": "op:" + OP.hex(), "type": "echo.start", "wave": w, "inc": EPOCH},
        "out": [{"to": "affixed", "type": "explore", "wave": w}, {"to": "outwhirled", "type": "explore", "wave": w}],
        "decide": [], "queue": 0,
    }
    affixed = c.recorders["affixed"].select()[0][0]
    assert affixed["in"] == {"from": "root", "type": "explore", "wave": w, "inc": EPOCH}  # root's epoch
    assert [o["to"] for o in affixed["out"]] == ["haywagon", "tubularia"]  # in the order emitted
    assert all(check_step(s, s["node"]) is s for s in c.steps(w))


def test_a_routing_id_of_the_nodes_own_name_is_an_operators():
    rec = Recorder("root", EPOCH, NAMES)
    rec.record(NOW, 0.0, b"root", EPOCH, m.Ping(1), [Reply(b"root", m.Pong(1, "root", 0, {}, []))], 0)
    step = rec.select()[0][0]
    assert step["in"]["from"] == "op:" + b"root".hex() and step["out"][0]["to"] == "op:" + b"root".hex()


def test_an_echo_is_2E_messages_paired_by_channel_and_decided_at_its_initiator():
    c = Cluster()
    w = wave()
    c.run("root", "wave.start", wave=w, kind="echo", params={"detail": False}, timeout=5.0, id=1)
    steps = c.steps(w)
    assert {s["node"] for s in steps} == set(SEED.names)
    sends = [(s["node"], o["to"], o["type"]) for s in steps for o in s["out"] if not o["to"].startswith("op:")]
    receives = [(s["in"]["from"], s["node"], s["in"]["type"]) for s in steps if not s["in"]["from"].startswith("op:")]
    assert len(sends) == 2 * LINKS and sorted(sends) == sorted(receives)
    decisions = [(s["node"], d) for s in steps for d in s["decide"]]
    # an echo's result is its entries (a Stream): too big to keep, so no result text
    assert decisions == [("root", {"wave": w, "kind": "echo", "what": f"decided: 8/{len(SEED.names)} nodes",
                                   "result": None})]


def test_finn_decides_at_every_node_with_the_tasks_it_enqueued():
    c = Cluster()
    w = wave("f")
    c.run("root", "wave.start", wave=w, kind="finn", params={"tasks": 2, "cost": 1.0}, timeout=60.0, id=1)
    decided = {s["node"]: d for s in c.steps(w) for d in s["decide"]}
    results = {n: json.loads(d.pop("result")) for n, d in decided.items()}
    assert decided == {n: {"wave": w, "kind": "finn", "what": "enqueued 2 tasks"} for n in SEED.names}
    assert all(len(r["enqueued"]) == 2 and r["sent"] >= 0 for r in results.values()), results
    assert all(s["queue"] == max(0, 2 - SEED.node(s["node"]).cpus) for s in c.steps(w) if s["decide"])


def test_a_round_selects_its_moves_and_the_nodes_remember_the_waves_they_saw_last():
    rec = Recorder("subserviate", EPOCH, NAMES)
    r = wave("m")
    rec.record(NOW, 0.0, OP, EPOCH, m.Move(f"{r}-0", "pical", ["t1"], 0), [Send("pical", m.Transfer(f"{r}-0", [], NOW, []))], 1)
    rec.record(NOW, 0.0, OP, EPOCH, m.Ping(1), [], 1)
    rec.record(NOW, 0.0, b"pical", EPOCH, m.Ack(f"{r}-0", True, []), [Send("pical", m.Forget(f"{r}-0", []))], 1)
    rec.record(NOW, 0.0, OP, EPOCH, m.TraceGet([r], 9), [ShowTrace(OP, (r,), 9)], 1)
    assert [s["seq"] for s in rec.select([r])[0]] == [0, 2]
    assert rec.select([r])[0][0]["out"] == [{"to": "pical", "type": "transfer", "wave": f"{r}-0"}]
    assert rec.select()[0][3]["out"] == [{"to": "op:" + OP.hex(), "type": "trace", "wave": None}]
    assert list(rec.seen) == [r] and round_of(f"{r}-12") == r and kind_of(r) == "rebalance"
    for k in range(12):  # the latest SEEN_WAVES, the latest last
        rec.record(NOW, 0.0, b"tubularia", EPOCH, W.Explore(wave("e", k), False, 1.0), [], 1)
    assert list(rec.seen) == [wave("e", k) for k in range(4, 12)]


def test_a_step_shaped_otherwise_is_refused_naming_the_node_and_field():
    good = {"node": "root", "inc": 1, "seq": 0, "t": 1.0, "dur": 0.1, "in": None, "out": [], "decide": [], "queue": 0}
    assert check_step(dict(good), "root") == good
    for bad, field in (({"seq": "0"}, ".seq"), ({"t": float("nan")}, "finite"), ({"queue": True}, ".queue"),
                       ({"out": [{"to": 1}]}, "out.to"), ({"in": {"from": "x"}}, "in.type"),
                       ({"decide": ["x"]}, "decide must be a map"), ({"node": "pical"}, "a step of node")):
        with pytest.raises(StepError, match=field):
            check_step({**good, **bad}, "root")


def test_the_merged_trace_is_the_models_dict():
    c = Cluster()
    w = wave()
    c.run("root", "wave.start", wave=w, kind="echo", params={"detail": False}, timeout=5.0, id=1)
    answers = {}
    for name, rec in reversed(list(c.recorders.items())):
        if name != "pical":
            steps, dropped = rec.select([w])
            answers[name] = {"steps": steps, "dropped": dropped}
    tr = merge(SEED, answers, ["pical"], w)
    assert set(tr) == {"format", "version", "source", "clock", "wave", "kind", "topology", "steps", "dropped", "missing"}
    assert (tr["format"], tr["version"], tr["source"], tr["clock"], tr["wave"], tr["kind"]) == \
        ("echofinn-trace", 1, "cluster", "wall", w, "echo")
    assert tr["topology"]["nodes"] == list(SEED.names)
    assert sorted(map(tuple, tr["topology"]["edges"])) == sorted((p, n) for n in SEED.names for p in SEED.parents(n))
    order = [(SEED.names.index(s["node"]), s["inc"], s["seq"]) for s in tr["steps"]]
    assert order == sorted(order) and "pical" not in {s["node"] for s in tr["steps"]}
    assert tr["missing"] == ["pical"] and tr["dropped"] == {n: 0 for n in SEED.names if n != "pical"}


def test_a_trace_reply_keeps_the_newest_steps_that_fit_its_budget():
    steps = [{"seq": k, "pad": "x" * 100} for k in range(10)]
    size = len(wire.pack_trace(1, "root", 1, 0, [], steps[-1:])) - len(wire.pack_trace(1, "root", 1, 0, [], []))
    reply = wire.decode(wire.pack_trace(1, "root", 1, 5, [], steps, budget=3 * size))
    assert [s["seq"] for s in wire.unpack_steps(reply["steps"])] == [7, 8, 9] and reply["dropped"] == 5 + 7
