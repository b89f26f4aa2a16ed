"""Traces of simulated runs in the trace model of :mod:`daemon.trace.model`
(``source: "sim"``, ``clock: "simulated"``), so that the files, diagrams and checks of
real clusters work on the simulator's runs too.

One step per event the wave's core accepted (the operator's start, each delivery,
duplicates included); a rejected event (a WaveError) is no step. Times are the
simulated clock in seconds (the simulator counts milliseconds), every step takes no
time (``dur`` 0), every node has one incarnation (``inc`` 0) and no queue (``queue``
null: the simulated waves run no task board). The operator's start arrives from
``op:sim``. Every receive carries ``in.n``, the message's number on its channel
(daemon/trace/model.py): the network reorders and duplicates, so pairing by order
would be wrong; the driver passes the number along with the message (daemon/sim/drive.py).
A decision carries its result as JSON text when it is small, as a node's flight recorder
keeps it: any kind's run (daemon/sim/wave.py ``simulate_wave(..., trace=True)``), and
every decision of a chaos run.
Tracing costs one call per event; a run without a tracer pays one test per event.
"""

from __future__ import annotations

from typing import Callable

from daemon.sim.network import START
from daemon.trace.model import Decision, Out, Received, Step, Trace

OPERATOR = "op:sim"

_TYPE_OF: dict[type, str] = {}


def type_name(msg: object) -> str:
    """A message's name in traces: a wave kind's message by its wire name (its
    MessageType's, daemon/core/wave.py), a node core's as daemon/wire.py names it."""
    cls = type(msg)
    name = _TYPE_OF.get(cls)
    if name is None:
        from daemon.plugins import wave_kinds
        from daemon.wire import trace_type

        for kind in wave_kinds().values():
            for mt in kind.messages:
                _TYPE_OF[mt.cls] = mt.name
        name = _TYPE_OF.get(cls)
        if name is None:
            try:
                return trace_type(msg)  # by the message's contents for a wave's envelope
            except KeyError:
                name = _TYPE_OF[cls] = cls.__name__.lower()
    return name


class SimTracer:
    """Collects the steps of one simulated wave over nodes named ``names``;
    ``what(w, step)`` words a decision (e.g. ``decided: 8/8 nodes``); ``result(w,
    step)``, when given, is the decision's result, kept as JSON text when it is small
    (daemon/trace/recorder.py ``result_text``, as a node's flight recorder keeps it)."""

    __slots__ = ("names", "wave", "kind", "what", "result", "steps", "_seq", "_sent")

    def __init__(self, names: tuple[str, ...], wave: str, kind: str, what: Callable[[object, object], str],
                 result: Callable[[object, object], object] | None = None):
        self.names = names
        self.wave = wave
        self.kind = kind
        self.what = what
        self.result = result
        self.steps: list[Step] = []
        self._seq = [0] * len(names)
        self._sent: dict[tuple[int, int], int] = {}

    def sent(self, p: int, q: int) -> int:
        """Number the next message from ``p`` to ``q`` (0, 1, ...); it travels with it."""
        n = self._sent.get((p, q), 0)
        self._sent[(p, q)] = n + 1
        return n

    def __call__(self, now: float, p: int, w: object, kind: int, src: int | None, msg: object, step,
                 n: int | None) -> None:
        names = self.names
        wave = self.wave
        if kind == START:
            recv = Received(OPERATOR, f"{self.kind}.start", wave, None)
        else:
            recv = Received(names[src], type_name(msg), wave, 0, n)
        out = tuple(Out(names[q], type_name(m), wave) for q, m in step.sends)
        decide = ()
        if step.decided:
            from daemon.trace.recorder import result_text

            text = None if self.result is None else result_text(self.result(w, step))
            decide = (Decision(wave, self.kind, self.what(w, step), text),)
        seq = self._seq[p]
        self._seq[p] = seq + 1
        self.steps.append(Step(names[p], 0, seq, now / 1000.0, 0.0, recv, out, decide, None))

    def trace(self, topology) -> Trace:
        """The trace of the run so far; ``topology`` gives the edges (a Topology, an
        IndexedGraph of one, or a daemon/core/wave.py Graph)."""
        edges = topology.topology.edges() if hasattr(topology, "topology") else topology.edges
        edges = edges() if callable(edges) else edges
        return Trace(nodes=list(self.names), edges=[tuple(e) for e in edges], steps=list(self.steps),
                     source="sim", clock="simulated", wave=self.wave, kind=self.kind,
                     dropped=dict.fromkeys(self.names, 0), missing=[])


class ChaosTracer:
    """Collects every step of whole nodes in a chaos run (daemon/sim/chaos.py): all
    waves, task hand-offs and ticks (``wave`` null). ``inc`` is the node's epoch, so a
    restart begins a new incarnation whose ``seq`` starts at 0; ``t`` is the run's
    simulated time, not the node's stepped clock; ``queue`` the tasks queued after the
    step. A message's number on its channel travels in :attr:`numbers`, by the run's
    send sequence (a duplicate or a backlog delivery keeps it)."""

    __slots__ = ("names", "edges", "steps", "numbers", "_seq", "_sent")

    def __init__(self, names: list[str], edges: list[tuple[str, str]]):
        self.names = list(names)
        self.edges = [tuple(e) for e in edges]
        self.steps: list[Step] = []
        self.numbers: dict[int, int] = {}      # the run's send seq -> number on its channel
        self._seq: dict[tuple[str, int], int] = {}
        self._sent: dict[tuple, int] = {}

    def sent(self, src: str, epoch: int, dst: str, msg: object, send_seq: int) -> None:
        key = (src, epoch, dst, getattr(msg, "wave", None))
        n = self._sent.get(key, 0)
        self._sent[key] = n + 1
        self.numbers[send_seq] = n

    def step(self, now: float, node: str, epoch: int, cause, outs: list, queue: int) -> None:
        """``cause``: None (a tick) or (sender name or None for the operator, sender epoch,
        message, send seq or None); ``outs``: (destination or None for the operator, message)."""
        from daemon.core.messages import WaveDecided
        from daemon.trace.recorder import _decision

        recv = None
        if cause is not None:
            src, inc, msg, send_seq = cause
            wave = getattr(msg, "wave", None)
            if src is None:
                recv = Received(OPERATOR, type_name(msg), wave, None)
            else:
                recv = Received(src, type_name(msg), wave, inc, self.numbers.get(send_seq))
        out = []
        decide = []
        for dst, msg in outs:
            kind = type_name(msg)
            wave = getattr(msg, "wave", None)
            out.append(Out(OPERATOR if dst is None else dst, kind, wave))
            if type(msg) is WaveDecided:  # in the kind's words, as a node's flight recorder says it
                decide.append(Decision(*_decision(msg, len(self.names))))
        key = (node, epoch)
        seq = self._seq.get(key, 0)
        self._seq[key] = seq + 1
        self.steps.append(Step(node, epoch, seq, now, 0.0, recv, tuple(out), tuple(decide), queue))

    def trace(self) -> Trace:
        return Trace(nodes=self.names, edges=self.edges, steps=list(self.steps), source="sim", clock="simulated",
                     wave=None, kind=None, dropped=dict.fromkeys(self.names, 0), missing=[])
