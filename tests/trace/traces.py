"""Traces for the trace tests: from the simulator on shipped and generated topologies,
and small hand-made ones in the model's dict form (daemon/trace/model.py); and the
check of a Perfetto JSON document against the trace-event format."""

from __future__ import annotations

import copy
import os

from daemon.sim.echo import simulate_echo
from daemon.sim.finn import simulate_finn
from daemon.sim.graph import generated
from daemon.topology import load

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED_TOML = os.path.join(ROOT, "topologies", "seed.toml")


def seed_topology():
    return load(SEED_TOML)


def echo_trace(topology=None, seed: int = 1, dup: float = 0.0, initiator: str | None = None) -> dict:
    run = simulate_echo(topology or seed_topology(), initiator, seed=seed, dup=dup, traced=True)
    return run.trace.to_dict()


def finn_trace(topology=None, seed: int = 1, dup: float = 0.0) -> dict:
    run = simulate_finn(topology or seed_topology(), seed=seed, dup=dup, traced=True)
    return run.trace.to_dict()


def gen(nodes: int, shape: str, seed: int = 3):
    return generated(nodes, shape, seed)


def step(node, seq, t, src=None, rtype="x", out=(), decide=(), inc=1, rinc=1, wave="w", dur=0.001, queue=None):
    """One step dict: ``src`` None is a tick, ``op:...`` an operator; ``out`` pairs (to, type)."""
    return {"node": node, "inc": inc, "seq": seq, "t": t, "dur": dur,
            "in": None if src is None else {"from": src, "type": rtype, "wave": wave,
                                            "inc": None if src.startswith("op:") else rinc},
            "out": [{"to": to, "type": ty, "wave": wave} for to, ty in out],
            "decide": [{"wave": wave, "kind": k, "what": "decided"} for k in decide],
            "queue": queue}


def hand(steps, nodes=("a", "b", "c"), edges=(("a", "b"), ("b", "c")), clock="wall", **extra) -> dict:
    d = {"format": "echofinn-trace", "version": 1, "source": "cluster", "clock": clock, "wave": "w",
         "kind": "echo", "topology": {"nodes": list(nodes), "edges": [list(e) for e in edges]},
         "steps": list(steps), "dropped": {}, "missing": []}
    d.update(extra)
    return d


def without(d: dict, pred) -> dict:
    """A copy of trace dict ``d`` without the steps ``pred(step)`` selects."""
    d = copy.deepcopy(d)
    d["steps"] = [s for s in d["steps"] if not pred(s)]
    return d


def check_perfetto(doc: dict, trace) -> None:
    """The structure Perfetto's JSON importer needs, and what our tracks promise."""
    events = doc["traceEvents"]
    assert isinstance(events, list) and events
    slices: dict[tuple, list[tuple[float, float]]] = {}
    named = {}
    for e in events:
        assert isinstance(e.get("name"), str) and e["name"], e
        assert e["ph"] in {"M", "X", "s", "f", "i", "C"}, e
        if e["ph"] != "M":
            assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0, e
        if e["ph"] == "M" and e["name"] == "thread_name":
            named[(e["pid"], e["tid"])] = e["args"]["name"]
        if e["ph"] == "X":
            assert isinstance(e["dur"], (int, float)) and e["dur"] > 0, e
            slices.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
    assert sorted(named.values()) == sorted(trace.nodes)
    assert sum(len(v) for v in slices.values()) == len(trace.steps)
    starts = [e for e in events if e["ph"] == "s"]
    finishes = [e for e in events if e["ph"] == "f"]
    assert len({e["id"] for e in starts}) == len(starts)
    by_id = {}
    for e in finishes:
        assert e["bp"] == "e"
        by_id.setdefault(e["id"], []).append(e)
    assert sorted(by_id) == sorted(e["id"] for e in starts)
    assert all(len(v) == 1 for v in by_id.values())
    for e in starts + finishes:
        track = slices[(e["pid"], e["tid"])]
        assert any(a <= e["ts"] <= b for a, b in track), e
    for s in starts:
        assert by_id[s["id"]][0]["ts"] >= s["ts"]  # no arrow runs backwards
    paired = sum(1 for m in trace.messages if m.send is not None and m.recv is not None)
    assert len(starts) == paired
