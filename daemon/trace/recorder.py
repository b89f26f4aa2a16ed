"""A node's flight recorder: its latest steps in a bounded ring, and the trace they make.

Theory of operation. A *step* is one turn of a node's core (daemon/core/node.py): a
message handled, or a timer tick that did something (a tick with no effect is not a
step). The driver (daemon/node.py ``NodeDaemon.handle``/``tick``) knows what the core
does not — the time a step began on the node's clock and how long handling it and
executing its effects took — and hands each step to :meth:`Recorder.record` with the
effects the core returned. The recorder keeps a compact tuple per step in a
``collections.deque(maxlen=RING_STEPS)``: old steps fall out, the memory stays bounded,
and nothing is turned into a dict until an operator asks (``trace.get``,
daemon/core/messages.py). Recording is on where the topology says ``[cluster] record =
true``: it costs a node one to three microseconds a step, a few per cent of an echo
wave (BENCHMARKS.md, "The flight recorder").

What a step holds (the trace model, as daemon/trace/model.py reads it):

- ``in``: sender, message type, wave, and the sender's epoch; None for a tick. The
  "wave" of a hand-off message (move, transfer, ack, forget, move.ok) is its move id,
  ``<round id>-<k>`` for a balancing round's k-th move, so sends and receives of a
  move pair up like a wave's;
- ``out``: every message the core emitted, in order (node sends and operator replies);
- ``decide``: the decisions taken in the step — the replies of a wave's decision
  (``wave.decided``), each in the kind's words (daemon/core/wave.py ``describe``): an
  echo's at its initiator (how many nodes its result holds), Finn's at each node (how
  many tasks it enqueued); and its ``result`` as one JSON text when it is small (at most
  :data:`RESULT_CHARS` characters encoded, not a Stream or bytes: an echo's entries are
  neither small nor JSON), else None — what a kind's own ``check()`` judges
  (daemon/trace/check.py). Encoding it costs the step that decides one ``json.dumps``;
- ``queue``: tasks queued at the node after the step.

Message types are named as on the wire, a wave's by its kind's own names
(daemon/wire.py ``trace_type``: ``explore``, ``echo``, ``finn``, ``echo.start``,
``echo.result``, ``finn.decided``), so traces read the same whatever frame carries them.

Each incarnation of a node (its epoch, ``inc``) numbers its steps from 0; ``dropped``
counts those that fell out of the ring (or were left out of an answer) before the first
one given. :func:`merge` makes the operator's answers one trace dict; :func:`check_step`
checks a step that came over the wire. Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import json
from collections import deque
from math import isfinite

from daemon import plugins
from daemon.core import messages as m
from daemon.core.node import Reply, Send, ShowTrace
from daemon.core.wave import Stream
from daemon.trace.model import RESULT_CHARS  # a decision's result longer than this, as JSON, is left out
from daemon.wire import count_entries, trace_type

RING_STEPS = 1_024  # steps a node keeps: about 500 bytes each, half a megabyte when full
SEEN_WAVES = 8  # wave ids a node remembers having seen last
FORMAT = "echofinn-trace"
VERSION = 1
ROUND_TAG = "m"  # a balancing round's id (daemon/operator.py): "rebalance"

# the message types whose first field names their wave (a move id for the hand-off)
_WAVED = frozenset({m.WaveStart, m.WaveDecided, m.WaveMessage, m.Move, m.MoveOk, m.Transfer, m.Ack, m.Forget})
# what traces call each message type; the waves' are the kinds' own names (trace_type)
_NAMES = {cls: kind for cls, kind in m.KIND.items() if cls not in (m.WaveStart, m.WaveDecided, m.WaveMessage)}
assert all(cls._fields[0] in ("wave", "move_id") for cls in _WAVED)


def wave_of(msg) -> str | None:
    """The wave (or move) a message belongs to; None for the rest (ping, submit, ...)."""
    return msg[0] if type(msg) in _WAVED else None


def round_of(wave: str) -> str:
    """The wave id in a move id (``<kind>-<start>-<random>-<k>``); a wave id itself."""
    parts = wave.split("-", 3)
    return "-".join(parts[:3]) if len(parts) == 4 else wave


def kind_of(wave: str | None) -> str | None:
    """The wave kind (``echo``, ``finn``, ...: daemon/plugins.py) or ``rebalance`` from a
    wave id's first part; else None."""
    if wave is None:
        return None
    tag = wave.split("-", 1)[0]
    if tag == ROUND_TAG:
        return "rebalance"
    cls = plugins.by_tag().get(tag)
    return None if cls is None else cls.name


class Recorder:
    """The flight recorder of node ``node``, incarnation ``inc`` (its epoch in ns).

    ``names``: routing id -> node name of every node of the cluster (an id not there is
    an operator's, shown ``op:<hex>``); ``size``: the ring's length in steps."""

    __slots__ = ("node", "inc", "names", "ring", "seq", "seen", "last", "nodes")

    def __init__(self, node: str, inc: int, names: dict[bytes, str], size: int = RING_STEPS):
        self.node = node
        self.inc = inc
        self.names = names
        self.nodes = len(names)
        self.ring: deque = deque(maxlen=size)
        self.seq = 0
        self.seen: deque = deque(maxlen=SEEN_WAVES)  # wave ids, the latest last
        self.last: str | None = None  # the latest input's wave (or move) id

    def _saw(self, wave: str) -> None:
        self.last = wave
        wave = round_of(wave)
        seen = self.seen
        if not seen or seen[-1] != wave:
            if wave in seen:
                seen.remove(wave)
            seen.append(wave)

    def record(self, t: float, dur: float, sender: bytes | None, epoch: int | None, msg, effects: list,
               queue: int) -> None:
        """One step: it began at ``t`` and took ``dur`` seconds (the node's clock); its
        input came from routing id ``sender`` with the sender's ``epoch`` (``msg`` None:
        a tick); the core returned ``effects``; ``queue`` tasks are queued after it."""
        waved = _WAVED
        kind_name = _NAMES
        if msg is None:
            step = [self.seq, t, dur, None, None, None, None, queue, 0]
        else:
            mt = type(msg)
            wave = msg[0] if mt in waved else None
            step = [self.seq, t, dur, sender, kind_name.get(mt) or trace_type(msg), wave, epoch, queue, 0]
            if wave is not None and wave != self.last:
                self._saw(wave)
        decides = None
        for effect in effects:
            kind = type(effect)
            if kind is Send or kind is Reply:  # (to, message), to a node or an operator
                out = effect[1]
                mt = type(out)
                step += (effect[0], kind_name.get(mt) or trace_type(out), out[0] if mt in waved else None)
                if mt is m.WaveDecided:
                    decides = (decides or ()) + _decision(out, self.nodes)
            elif kind is ShowTrace:
                step += (effect.to, "trace", None)
        if decides is not None:
            step[_DECIDED] = len(decides) // _DECISION
            step += decides
        self.ring.append(tuple(step))
        self.seq += 1

    def select(self, wave_ids=(), max_steps: int = RING_STEPS) -> tuple[list[dict], int]:
        """``(steps, dropped)``: the newest ``max_steps`` recorded steps that concern one
        of ``wave_ids`` (or of the moves ``<id>-<k>`` of a round ``<id>``; all steps if
        none is given), oldest first, as dicts of the trace model; and how many steps of
        this incarnation came before the first one given and are not in the ring any
        more, or are left out by ``max_steps``."""
        ring = self.ring
        dropped = ring[0][0] if ring else self.seq  # the oldest step's seq
        wanted = frozenset(wave_ids)
        if wanted:
            chosen = [s for s in ring if _concerns(s, wanted)]
        else:
            chosen = list(ring)
        if len(chosen) > max_steps:
            dropped += len(chosen) - max_steps
            chosen = chosen[len(chosen) - max_steps:] if max_steps else []
        return [self.to_dict(s) for s in chosen], dropped

    def to_dict(self, step: tuple) -> dict:
        """One compact step as the trace model's dict."""
        seq, t, dur, sender, kind, wave, epoch, queue, decided = step[:_OUTS]
        end = len(step) - _DECISION * decided
        return {
            "node": self.node, "inc": self.inc, "seq": seq, "t": t, "dur": dur,
            "in": None if kind is None else {"from": self._who(sender), "type": kind, "wave": wave, "inc": epoch},
            "out": [{"to": self._who(step[k]), "type": step[k + 1], "wave": step[k + 2]} for k in range(_OUTS, end, 3)],
            "decide": [{"wave": step[k], "kind": step[k + 1], "what": step[k + 2], "result": step[k + 3]}
                       for k in range(end, len(step), _DECISION)],
            "queue": queue,
        }

    def _who(self, ident) -> str:
        if type(ident) is str:  # a node the core sent to
            return ident
        name = self.names.get(ident)
        # its own name as a routing id is an operator's (daemon/core/node.py handle)
        return name if name is not None and name != self.node else "op:" + ident.hex()


# A step in the ring is one flat tuple of atoms (numbers, strings, bytes, None), which the
# GC stops tracking at its first pass: nested tuples would stay tracked and pile up in
# the oldest generation, whose full collections then cost each node milliseconds:
#   (seq, t, dur, sender, in type, in wave, sender epoch, queue, decisions,
#    [to, type, wave] for each output, [wave, kind, what, result] for each decision)
# with in type None for a tick, and a decision's result one JSON text (a string, an
# atom) or None.
_DECIDED = 8  # index of the number of decisions
_OUTS = 9  # index of the first output
_DECISION = 4  # atoms per decision


def _decision(msg: m.WaveDecided, nodes: int) -> tuple:
    """(wave, kind, what, result) of a decision's report: in the kind's words, and its
    result as JSON text (:func:`result_text`)."""
    cls = plugins.wave_kinds().get(msg.kind)
    result = msg.result
    text = result_text(result)
    try:
        if type(result) is Stream or type(result) is bytes:
            result = count_entries(result if type(result) is Stream else (result,))
        what = cls.describe(result, nodes) if cls is not None else "decided"
        what = what if type(what) is str else "decided"
    except Exception:  # a kind's words must not cost the node its recording
        what = "decided"
    return (msg.wave, msg.kind, what[:200], text)


def result_text(result) -> str | None:
    """A decision's result as compact JSON text, or None when it is a Stream or bytes
    (echo's entries), holds something JSON cannot say, or is longer than
    :data:`RESULT_CHARS` characters encoded."""
    if type(result) is Stream or type(result) is bytes:
        return None
    try:
        text = json.dumps(result, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return text if len(text) <= RESULT_CHARS else None


def _concerns(step: tuple, wanted: frozenset) -> bool:
    """Whether a compact step's input, an output or a decision is of a wave in ``wanted``
    (the waves sit at index 5, every third place from _OUTS + 2 among the outputs, and
    first in each decision)."""
    end = len(step) - _DECISION * step[_DECIDED]
    waves = [step[5]]
    waves.extend(step[k] for k in range(_OUTS + 2, end, 3))
    waves.extend(step[k] for k in range(end, len(step), _DECISION))
    return any(w is not None and (w in wanted or round_of(w) in wanted) for w in waves)


# --- the operator's side: answers checked and merged ----------------------------------


class StepError(ValueError):
    """A step from a node that is not shaped like the trace model's."""


_MESSAGE = {"from": str, "type": str, "wave": (str, type(None)), "inc": (int, type(None))}
_OUT = {"to": str, "type": str, "wave": (str, type(None))}
_DECIDE = {"wave": str, "kind": str, "what": str}


def check_step(step: dict, node: str) -> dict:
    """``step`` if it is a step of node ``node`` as the model says, else StepError."""
    def fields(d, spec, what):
        if type(d) is not dict:
            raise StepError(f"node {node}: step {what} must be a map")
        for key, types in spec.items():
            if not isinstance(d.get(key), types) or type(d.get(key)) is bool:
                raise StepError(f"node {node}: step field {what}.{key} is {d.get(key)!r}")

    fields(step, {"node": str, "inc": int, "seq": int, "t": (int, float), "dur": (int, float),
                  "out": list, "decide": list, "queue": int}, "")
    if step["node"] != node:
        raise StepError(f"node {node}: a step of node {step['node']!r}")
    if not (isfinite(step["t"]) and isfinite(step["dur"])):
        raise StepError(f"node {node}: step {step['seq']}: t and dur must be finite")
    if step.get("in") is not None:
        fields(step["in"], _MESSAGE, "in")
    for out in step["out"]:
        fields(out, _OUT, "out")
    for decide in step["decide"]:
        fields(decide, _DECIDE, "decide")
        result = decide.get("result")
        if result is not None and (type(result) is not str or len(result) > RESULT_CHARS):
            shown = f"{len(result)} characters" if type(result) is str else repr(result)[:80]
            raise StepError(f"node {node}: step field decide.result must be JSON text of at most "
                            f"{RESULT_CHARS} characters or null, got {shown}")
    return step


def merge(topology, answers: dict[str, dict], missing: list[str], wave: str | None = None,
          kind: str | None = None) -> dict:
    """One trace dict (the model's, ``source`` "cluster", ``clock`` "wall") from the
    ``trace`` replies of the nodes (name -> checked reply with its ``steps`` as dicts)
    and the names of those that did not answer."""
    order = {name: k for k, name in enumerate(topology.names)}
    steps = [s for name in sorted(answers, key=order.__getitem__) for s in answers[name]["steps"]]
    steps.sort(key=lambda s: (order[s["node"]], s["inc"], s["seq"]))
    return {
        "format": FORMAT, "version": VERSION, "source": "cluster", "clock": "wall",
        "wave": wave, "kind": kind if kind is not None else kind_of(wave),
        "topology": {"nodes": list(topology.names),
                     "edges": [[p, n] for n in topology.names for p in topology.parents(n)]},
        "steps": steps,
        "dropped": {name: answers[name]["dropped"] for name in topology.names if name in answers},
        "missing": [name for name in topology.names if name in missing],
    }
