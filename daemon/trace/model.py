"""The trace of a wave: what every node did, step by step, and which sends its receives
answer — read, checked and ordered offline. Pure: no socket, no clock.

Theory of operation (ARCHITECTURE.md, "Traces"; Lamport 1978, Fidge 1988, Mattern 1989;
Tel 2.3):

- A trace is one JSON-able dict (``"format": "echofinn-trace", "version": 1``) written by
  the nodes' flight recorders (``source: "cluster"``, times on each node's own wall
  clock) or by the simulator (``source: "sim"``, ``clock: "simulated"``). A *step* is one
  handled input at one node — a message, an operator's request, or a timer tick
  (``in`` null) — with what it sent (``out``, in the order the core emitted them), what
  it decided (each decision with its ``result`` as JSON text when it is small, at most
  :data:`RESULT_CHARS` characters: optional, so traces written before it still load) and
  the node's queue afterwards. :meth:`Trace.from_dict` checks every field and names the
  step that is wrong; :func:`load` adds the file's name.
- Matching, without trusting clocks across hosts (ZeroMQ keeps order on one
  connection): for sender a, receiver b and wave w, a's ``out`` entries to b are ordered
  by (inc, seq, position in out) and b's steps with ``in`` from a by (inc, seq); both are
  split by the sender's incarnation (the ``in.inc`` of a receive), and the n-th send
  pairs with the n-th receive. A send left over is lost (or still in flight); a receive
  left over was sent before the recording window. When the sender's ring had dropped
  steps (``dropped``) and receives outnumber sends, the receives left over are the
  earliest ones. A receive whose ``in.inc`` is null belongs to the sender's incarnation
  when the trace holds only one of it. The simulator's network reorders: pairing by
  order may then pair a send with a sibling's receive on the same channel, never with a
  receive before it (the n-th receive comes after the n-th send) — but with duplicates
  and reordering together, pairing by order can pair a receive with a later send and
  lose causality. So the simulator, which knows, writes one field beyond the shared
  contract: ``in.n``, the message's number on its channel (the n-th send, from 0, of
  ``in.from`` to this node for this wave by that incarnation). A receive with ``n``
  pairs with exactly that send; a second receive of the same ``n`` is a duplicate
  delivery, never paired. A cluster's recorder does not write ``n`` (ZeroMQ keeps order
  and does not duplicate), and then the order rule above applies.
- Happens-before is program order at each node (steps by (inc, seq)) plus each matched
  pair, at the granularity of steps: a send happens in its step, a receive is its step.
  :attr:`Trace.lamport` numbers the steps so that every predecessor has a smaller
  number; a cycle (a receive before its own send, which only a corrupt trace can hold)
  raises :class:`TraceError`. Vector clocks cost a number per node and step, so they
  are computed only on request (:meth:`Trace.vector_clocks`, for ShiViz); the checks
  use :meth:`Trace.causal_nodes`, a bit per node and step (a 200-node trace: four
  machine words a step).
"""

from __future__ import annotations

import heapq
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

from daemon.errors import BadInput

FORMAT = "echofinn-trace"
VERSION = 1
SOURCES = ("cluster", "sim")
CLOCKS = ("wall", "simulated")
KINDS = ("echo", "finn", "rebalance")  # the built-in ones; kinds() adds the installed wave kinds


def kinds() -> tuple[str, ...]:
    """What a trace may be about: a balancing round, or a wave of an installed kind
    (daemon/plugins.py)."""
    from daemon.plugins import wave_kinds

    return tuple(dict.fromkeys(KINDS + tuple(wave_kinds())))
OPERATOR_PREFIX = "op:"  # a routing id that is not a node's: an operator


class TraceError(BadInput):
    """A trace that does not follow the model; the message names the file, step and field."""


@dataclass(frozen=True, slots=True)
class Received:
    """What a step handled: a message ``type`` from ``src`` (a node or ``op:<hex>``) for
    ``wave``, sent by the sender's incarnation ``inc`` (null: not known); ``n``: the
    message's number on its channel, when the writer knows it (the simulator)."""

    src: str
    type: str
    wave: str | None = None
    inc: int | None = None
    n: int | None = None


@dataclass(frozen=True, slots=True)
class Out:
    """One message a step sent, to a node or an operator (``op:<hex>``)."""

    to: str
    type: str
    wave: str | None = None


RESULT_CHARS = 512  # the longest result text a decision carries (daemon/trace/recorder.py)


@dataclass(frozen=True, slots=True)
class Decision:
    """A wave decided at this step: ``what`` says how, in a few words; ``result`` is
    the decision's result as JSON text when the writer kept it (small results only),
    else None."""

    wave: str
    kind: str
    what: str = ""
    result: str | None = None

    def value(self) -> Any:
        """The result, decoded (None when the trace does not carry it)."""
        return None if self.result is None else json.loads(self.result)


@dataclass(frozen=True, slots=True)
class Step:
    """One handled input at one node (``recv`` None: a timer tick)."""

    node: str
    inc: int
    seq: int
    t: float
    dur: float
    recv: Received | None = None
    out: tuple[Out, ...] = ()
    decide: tuple[Decision, ...] = ()
    queue: int | None = None

    @property
    def ref(self) -> str:
        """``node#seq``; :meth:`Trace.ref` adds the incarnation where a node has several."""
        return f"{self.node}#{self.seq}"


@dataclass(frozen=True, slots=True)
class Message:
    """One node-to-node message: its send (step index, position in ``out``) and its
    receive (step index), either None when it was not paired; ``duplicate``: a second
    receive of a message already paired."""

    src: str
    dst: str
    type: str
    wave: str | None
    send: tuple[int, int] | None
    recv: int | None
    duplicate: bool = False


@dataclass
class Trace:
    """A whole trace. ``steps`` keep the file's order; indexes into it name steps."""

    nodes: list[str]
    edges: list[tuple[str, str]]
    steps: list[Step]
    source: str = "sim"
    clock: str = "simulated"
    wave: str | None = None
    kind: str | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    # --- the dict form ----------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: Any) -> "Trace":
        """Check ``d`` against the model and build the trace; raises TraceError naming
        the step and field that are wrong."""
        if not isinstance(d, dict):
            raise TraceError(f"a trace is a JSON object, got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise TraceError(f"field 'format' must be {FORMAT!r}, got {d.get('format')!r}")
        if d.get("version") != VERSION:
            raise TraceError(f"field 'version': this reader knows version {VERSION}, got {d.get('version')!r}")
        source = _choice(d, "source", SOURCES)
        clock = _choice(d, "clock", CLOCKS)
        wave = _opt_str(d.get("wave"), "field 'wave'")
        kind = d.get("kind")
        if kind is not None and kind not in kinds():
            raise TraceError(f"field 'kind' must be one of {', '.join(kinds())} or null, got {kind!r}")
        topo = d.get("topology")
        if not isinstance(topo, dict):
            raise TraceError("field 'topology' must be an object with 'nodes' and 'edges'")
        nodes = topo.get("nodes")
        if not isinstance(nodes, list) or not all(isinstance(n, str) and n for n in nodes):
            raise TraceError("field 'topology.nodes' must be a list of node names")
        if len(set(nodes)) != len(nodes):
            twice = sorted({n for n in nodes if nodes.count(n) > 1})
            raise TraceError(f"field 'topology.nodes' names {', '.join(twice)} twice")
        known = set(nodes)
        edges = []
        for k, e in enumerate(_list(topo, "edges", "topology.edges")):
            if not (isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e)):
                raise TraceError(f"topology.edges[{k}] must be [parent, child], got {e!r}")
            for x in e:
                if x not in known:
                    raise TraceError(f"topology.edges[{k}] names {x!r}, not a node of topology.nodes")
            edges.append((e[0], e[1]))
        steps = [_step(s, k, known) for k, s in enumerate(_list(d, "steps", "steps"))]
        seen: dict[tuple[str, int, int], int] = {}
        for k, s in enumerate(steps):
            key = (s.node, s.inc, s.seq)
            if key in seen:
                raise TraceError(f"steps[{k}] (node {s.node}, inc {s.inc}, seq {s.seq}) repeats steps[{seen[key]}]")
            seen[key] = k
        dropped = d.get("dropped", {})
        if not isinstance(dropped, dict) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in dropped.values()):
            raise TraceError("field 'dropped' must map node names to counts >= 0")
        for name in dropped:
            if name not in known:
                raise TraceError(f"field 'dropped' names {name!r}, not a node of topology.nodes")
        missing = d.get("missing", [])
        if not isinstance(missing, list) or not all(isinstance(n, str) for n in missing):
            raise TraceError("field 'missing' must be a list of node names")
        for name in missing:
            if name not in known:
                raise TraceError(f"field 'missing' names {name!r}, not a node of topology.nodes")
        return cls(nodes=list(nodes), edges=edges, steps=steps, source=source, clock=clock, wave=wave,
                   kind=kind, dropped=dict(dropped), missing=list(missing))

    def to_dict(self) -> dict:
        """The model's JSON-able dict (what :meth:`from_dict` reads back)."""
        return {
            "format": FORMAT, "version": VERSION, "source": self.source, "clock": self.clock,
            "wave": self.wave, "kind": self.kind,
            "topology": {"nodes": list(self.nodes), "edges": [list(e) for e in self.edges]},
            "steps": [_step_dict(s) for s in self.steps],
            "dropped": dict(self.dropped), "missing": list(self.missing),
        }

    # --- order ---------------------------------------------------------------------------

    @cached_property
    def program(self) -> dict[str, list[int]]:
        """Each node's step indexes in program order, by (inc, seq)."""
        by_node: dict[str, list[int]] = {n: [] for n in self.nodes}
        for k, s in enumerate(self.steps):
            by_node[s.node].append(k)
        steps = self.steps
        for ks in by_node.values():
            ks.sort(key=lambda k: (steps[k].inc, steps[k].seq))
        return by_node

    @cached_property
    def messages(self) -> list[Message]:
        """Every node-to-node message, paired send -> receive by the rule above, in the
        order: by channel and wave, then send order (unpaired receives after)."""
        steps = self.steps
        known = set(self.nodes)
        sends: dict[tuple, list[tuple[int, int]]] = {}
        recvs: dict[tuple, list[int]] = {}
        incs: dict[str, set[int]] = {}
        for node, ks in self.program.items():
            for k in ks:
                s = steps[k]
                incs.setdefault(node, set()).add(s.inc)
                for pos, o in enumerate(s.out):
                    if o.to in known:
                        sends.setdefault((node, o.to, o.wave, s.inc), []).append((k, pos))
        for node, ks in self.program.items():
            for k in ks:
                r = steps[k].recv
                if r is None or r.src not in known:
                    continue
                inc = r.inc
                if inc is None and len(incs.get(r.src, ())) == 1:
                    inc = next(iter(incs[r.src]))
                recvs.setdefault((r.src, node, r.wave, inc), []).append(k)
        found: list[Message] = []
        for key in sorted(set(sends) | set(recvs), key=_group_order):
            src, dst, wave, _ = key
            ss = sends.get(key, [])
            rs = recvs.get(key, [])
            numbered = [k for k in rs if steps[k].recv.n is not None]
            if numbered:
                found += _pair_numbered(steps, src, dst, wave, ss, rs)
                continue
            skip = 0
            if len(rs) > len(ss) and self.dropped.get(src, 0) > 0:
                skip = len(rs) - len(ss)  # sent before the sender's ring began
            for k in rs[:skip]:
                found.append(Message(src, dst, steps[k].recv.type, wave, None, k))
            for n, (k, pos) in enumerate(ss):
                j = skip + n
                recv = rs[j] if j < len(rs) else None
                found.append(Message(src, dst, steps[k].out[pos].type, wave, (k, pos), recv))
            for k in rs[skip + len(ss):]:
                found.append(Message(src, dst, steps[k].recv.type, wave, None, k))
        return found

    @cached_property
    def matched_send(self) -> dict[int, int]:
        """Receiving step index -> sending step index, for every paired message."""
        return {m.recv: m.send[0] for m in self.messages if m.send is not None and m.recv is not None}

    def ref(self, k: int) -> str:
        """How messages name step ``k``: ``node#seq``, and ``node#seq/inc2`` for a step of
        a node's second incarnation in the trace (a restart), and so on."""
        s = self.steps[k]
        incs = self._incarnations[s.node]
        return s.ref if len(incs) == 1 else f"{s.ref}/inc{incs.index(s.inc) + 1}"

    @cached_property
    def _incarnations(self) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {n: [] for n in self.nodes}
        for s in self.steps:
            if s.inc not in found[s.node]:
                found[s.node].append(s.inc)
        for incs in found.values():
            incs.sort()
        return found

    def previous(self, k: int) -> int | None:
        """The step before step ``k`` at its node, or None."""
        return self._prev[k]

    @cached_property
    def _prev(self) -> list[int | None]:
        prev: list[int | None] = [None] * len(self.steps)
        for ks in self.program.values():
            for a, b in zip(ks, ks[1:]):
                prev[b] = a
        return prev

    def predecessors(self, k: int) -> list[int]:
        """The steps immediately before step ``k`` in happens-before."""
        return self._preds[k]

    @cached_property
    def _preds(self) -> list[list[int]]:
        preds: list[list[int]] = [[] if p is None else [p] for p in self._prev]
        for recv, send in self.matched_send.items():
            preds[recv].append(send)
        return preds

    @cached_property
    def order(self) -> list[int]:
        """Every step index in an order that respects happens-before (Kahn's algorithm,
        ties by node file order); raises TraceError on a cycle."""
        n = len(self.steps)
        succ: list[list[int]] = [[] for _ in range(n)]
        indeg = [0] * n
        for k in range(n):
            for p in self.predecessors(k):
                succ[p].append(k)
                indeg[k] += 1
        rank = {name: i for i, name in enumerate(self.nodes)}
        ready = [(self.steps[k].t if self.clock == "simulated" else 0.0, rank[self.steps[k].node], k)
                 for k in range(n) if indeg[k] == 0]
        heapq.heapify(ready)
        out = []
        while ready:
            *_, k = heapq.heappop(ready)
            out.append(k)
            for q in succ[k]:
                indeg[q] -= 1
                if indeg[q] == 0:
                    heapq.heappush(ready, (self.steps[q].t if self.clock == "simulated" else 0.0,
                                           rank[self.steps[q].node], q))
        if len(out) < n:
            stuck = min((k for k in range(n) if indeg[k]), key=lambda k: (rank[self.steps[k].node], k))
            s = self.steps[stuck]
            raise TraceError(f"the matched messages form a cycle through step {s.ref} (inc {s.inc}): "
                             "a receive would happen before its own send")
        return out

    @cached_property
    def lamport(self) -> list[int]:
        """Each step's Lamport clock: one more than the largest of its predecessors'."""
        clock = [0] * len(self.steps)
        for k in self.order:
            clock[k] = 1 + max((clock[p] for p in self.predecessors(k)), default=0)
        return clock

    def vector_clocks(self) -> list[dict[str, int]]:
        """Each step's vector clock (node -> steps of that node up to it, zeros left out):
        the node's own entry counts its steps in the trace, one more at each."""
        vc: list[dict[str, int]] = [{} for _ in self.steps]
        count: dict[str, int] = {}
        for k in self.order:
            clock: dict[str, int] = {}
            for p in self.predecessors(k):
                for name, c in vc[p].items():
                    if c > clock.get(name, 0):
                        clock[name] = c
            node = self.steps[k].node
            count[node] = count.get(node, 0) + 1
            clock[node] = count[node]
            vc[k] = clock
        return vc

    def causal_nodes(self, k: int) -> set[str]:
        """The nodes with a step that happens before step ``k`` (or is it)."""
        mask = self._heard[k]
        return {name for i, name in enumerate(self.nodes) if mask >> i & 1}

    @cached_property
    def _heard(self) -> list[int]:
        # One bit per node (file order) for the nodes in each step's causal past: the OR
        # of its predecessors' and its own, N/64 machine words a step where vector
        # clocks would take N numbers.
        bit = {name: 1 << i for i, name in enumerate(self.nodes)}
        heard = [0] * len(self.steps)
        steps = self.steps
        for k in self.order:
            mask = bit[steps[k].node]
            for p in self.predecessors(k):
                mask |= heard[p]
            heard[k] = mask
        return heard

    def decisions(self) -> list[tuple[int, Decision]]:
        """(step index, decision) of every decision, in happens-before order."""
        return [(k, d) for k in self.order for d in self.steps[k].decide]


def load(path: str | Path) -> Trace:
    """Read a raw trace (``.etrace`` / ``.etrace.json``, or any file holding the dict);
    raises TraceError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TraceError(f"{path}: cannot read the trace: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise TraceError(f"{path}: not JSON: {exc}") from None
    try:
        return Trace.from_dict(data)
    except TraceError as exc:
        raise TraceError(f"{path}: {exc}") from None


def dump(trace: Trace, path: str | Path) -> None:
    """Write the raw model as compact JSON (what :func:`load` reads)."""
    Path(path).write_text(json.dumps(trace.to_dict(), separators=(",", ":")) + "\n", encoding="utf-8")


def as_trace(trace: "Trace | dict") -> Trace:
    """A Trace from a Trace or its dict form (checked)."""
    return trace if isinstance(trace, Trace) else Trace.from_dict(trace)


def _pair_numbered(steps: list[Step], src: str, dst: str, wave, ss: list, rs: list) -> list[Message]:
    """One channel's messages when its receives carry ``n``: each pairs with its send;
    a repeated ``n`` is a duplicate; receives without ``n`` take the sends left, in order."""
    by_send: dict[int, int] = {}
    extra = []
    for k in rs:
        n = steps[k].recv.n
        if n is not None and n < len(ss) and n not in by_send:
            by_send[n] = k
        else:
            extra.append(k)
    left = [n for n in range(len(ss)) if n not in by_send]
    unnumbered = [k for k in extra if steps[k].recv.n is None]
    for n, k in zip(left, unnumbered):
        by_send[n] = k
    paired = set(by_send.values())
    found = []
    for n, (k, pos) in enumerate(ss):
        found.append(Message(src, dst, steps[k].out[pos].type, wave, (k, pos), by_send.get(n)))
    for k in rs:
        if k not in paired:
            r = steps[k].recv
            found.append(Message(src, dst, r.type, wave, None, k, duplicate=r.n is not None and r.n < len(ss)))
    return found


# --- checking one step -------------------------------------------------------------------


def _group_order(key: tuple) -> tuple:
    src, dst, wave, inc = key
    return (src, dst, wave or "", inc if inc is not None else -1)


def _choice(d: dict, name: str, allowed: Iterable[str]) -> str:
    value = d.get(name)
    if value not in allowed:
        raise TraceError(f"field {name!r} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _list(d: dict, name: str, where: str) -> list:
    value = d.get(name)
    if not isinstance(value, list):
        raise TraceError(f"field {where!r} must be a list, got {type(value).__name__}")
    return value


def _opt_str(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TraceError(f"{where} must be a string or null, got {value!r}")
    return value


def _int(value: Any, where: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise TraceError(f"{where} must be an integer >= {low}, got {value!r}")
    return value


def _num(value: Any, where: str, low: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TraceError(f"{where} must be a finite number, got {value!r}")
    if low is not None and value < low:
        raise TraceError(f"{where} must be >= {low}, got {value!r}")
    return float(value)


def _peer(value: Any, where: str, known: set[str]) -> str:
    if not isinstance(value, str) or not (value in known or value.startswith(OPERATOR_PREFIX)):
        raise TraceError(f"{where} must be a node of topology.nodes or 'op:<hex>', got {value!r}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise TraceError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _step(s: Any, k: int, known: set[str]) -> Step:
    if not isinstance(s, dict):
        raise TraceError(f"steps[{k}] must be an object, got {type(s).__name__}")
    node = s.get("node")
    if not isinstance(node, str) or node not in known:
        raise TraceError(f"steps[{k}]: field 'node' must be a node of topology.nodes, got {node!r}")
    where = f"steps[{k}] (node {node}, seq {s.get('seq')!r})"
    inc = _int(s.get("inc"), f"{where}: field 'inc'")
    seq = _int(s.get("seq"), f"{where}: field 'seq'")
    t = _num(s.get("t"), f"{where}: field 't'")
    dur = _num(s.get("dur"), f"{where}: field 'dur'", 0.0)
    recv = None
    r = s.get("in")
    if r is not None:
        if not isinstance(r, dict):
            raise TraceError(f"{where}: field 'in' must be an object or null")
        rinc = r.get("inc")
        n = r.get("n")
        recv = Received(src=_peer(r.get("from"), f"{where}: field 'in.from'", known),
                        type=_text(r.get("type"), f"{where}: field 'in.type'"),
                        wave=_opt_str(r.get("wave"), f"{where}: field 'in.wave'"),
                        inc=None if rinc is None else _int(rinc, f"{where}: field 'in.inc'"),
                        n=None if n is None else _int(n, f"{where}: field 'in.n'"))
    if not isinstance(s.get("out", []), list) or not isinstance(s.get("decide", []), list):
        raise TraceError(f"{where}: fields 'out' and 'decide' must be lists")
    outs = []
    for j, o in enumerate(s.get("out", [])):
        w = f"{where}: out[{j}]"
        if not isinstance(o, dict):
            raise TraceError(f"{w} must be an object")
        outs.append(Out(to=_peer(o.get("to"), f"{w}.to", known), type=_text(o.get("type"), f"{w}.type"),
                        wave=_opt_str(o.get("wave"), f"{w}.wave")))
    decide = []
    for j, dd in enumerate(s.get("decide", [])):
        w = f"{where}: decide[{j}]"
        if not isinstance(dd, dict):
            raise TraceError(f"{w} must be an object")
        decide.append(Decision(wave=_text(dd.get("wave"), f"{w}.wave"), kind=_text(dd.get("kind"), f"{w}.kind"),
                               what=str(dd.get("what", "")), result=_result(dd.get("result"), f"{w}.result")))
    queue = s.get("queue")
    if queue is not None:
        queue = _int(queue, f"{where}: field 'queue'")
    return Step(node=node, inc=inc, seq=seq, t=t, dur=dur, recv=recv, out=tuple(outs), decide=tuple(decide),
                queue=queue)


def _step_dict(s: Step) -> dict:
    r = s.recv
    return {
        "node": s.node, "inc": s.inc, "seq": s.seq, "t": s.t, "dur": s.dur,
        "in": None if r is None else _received_dict(r),
        "out": [{"to": o.to, "type": o.type, "wave": o.wave} for o in s.out],
        "decide": [_decision_dict(d) for d in s.decide],
        "queue": s.queue,
    }


def _result(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > RESULT_CHARS:
        shown = f"{len(value)} characters" if isinstance(value, str) else repr(value)[:80]
        raise TraceError(f"{where} must be JSON text of at most {RESULT_CHARS} characters or null, got {shown}")
    try:
        json.loads(value)
    except ValueError as exc:
        raise TraceError(f"{where} is not JSON text: {exc}") from None
    return value


def _decision_dict(d: Decision) -> dict:
    out = {"wave": d.wave, "kind": d.kind, "what": d.what}
    if d.result is not None:
        out["result"] = d.result
    return out


def _received_dict(r: Received) -> dict:
    d = {"from": r.src, "type": r.type, "wave": r.wave, "inc": r.inc}
    if r.n is not None:
        d["n"] = r.n
    return d
