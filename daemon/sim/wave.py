"""Any wave kind in the seeded simulator: ``simulate_wave(kind, graph, ...)`` runs one
wave of a :class:`~daemon.core.wave.Wave` subclass over a simulated network and judges
it with the kind's own :meth:`~daemon.core.wave.Wave.check`.

Theory of operation (ARCHITECTURE.md, "The waves"; daemon/core/wave.py for the contract):

- **The network** is :class:`~daemon.sim.drive.Driver`'s (daemon/sim/network.py): every
  send delivered once after its own seeded delay, so messages on a channel overtake each
  other freely; with ``dup`` > 0 some are delivered a second time, later. A run is a
  seed: the same kind, graph, initiators, parameters and seed give the same run.
- **One instance per node**, created when the operator's start or the first message of
  the wave reaches it, as the node does; the initiators get the operator's start at
  time 0, in the order given. When an instance says it is :attr:`~Wave.finished`, the
  node forgets it and drops what still arrives for the wave there (``dropped``), as the
  node does with a wave it remembers only by id.
- **The node a wave sees** (:class:`SimNode`, a :class:`~daemon.core.wave.WaveNode`):
  ``send`` checks what the edge and the receiving node would (the message is one of the
  kind's types, of this wave, every field in its bound — :func:`bound_problem`, and a
  list of names only of the cluster's nodes — and the
  receiver hears from the sender: a child for a kind that hears from its parents, a
  neighbour otherwise) and refuses anything else: the message is not sent and the run
  lists it (``refused``), a violation. ``decide`` records (node, result) in order; a
  second decision at a node is recorded and is a violation. ``sample`` returns a small
  dict (the node's name, the time, and what ``samples`` gives for it), ``enqueue``
  records the tasks it would create (``tasks``), ``set_deadline`` schedules a timer
  event that calls :meth:`~Wave.expire` (a later call replaces it; None cancels),
  ``now`` is the simulated time in seconds.
- **Events are atomic**: what an event sends, decides, enqueues or schedules takes
  effect only if the event returns. A :class:`~daemon.core.waves.WaveError` is a
  rejection (``rejected``, as the node counts them), any other exception is contained
  (``errors``), as the node contains a wave that raises; over a network that only
  delays and duplicates, a correct kind does neither, so both are violations.
- **The result** (:class:`WaveSim`): a :class:`~daemon.core.wave.WaveRun` (sends per
  directed channel by node name, originals only; decisions in order; the nodes
  reached; ``complete`` false when the event limit cut the run short), the kind's
  ``check()`` violations after the harness's own, and the counters a reader wants:
  events, simulated time, duplicates delivered, the most original messages in flight at
  once (1 for a token), decision times.
- **Causality**: on networks of up to :data:`CLOCKS_MAX_NODES` nodes the run keeps
  vector clocks (daemon/sim/clocks.py) and records, for each decision, the nodes with no
  event causally before it (``unpreceded``). Tel's definition of a wave (def. 6.1,
  *dependence*) asks for none. A kind that claims it sets the class attribute
  ``dependence = True`` (not part of daemon/core/wave.py's contract yet: read with
  ``getattr``, default False), and then a decision that misses a node is a violation;
  for other kinds it is only reported (Finn's decisions follow only their ancestors).
  ``check()`` cannot judge it: a :class:`WaveRun` carries no causal order.

The kinds the simulator knows are the installation's (daemon/plugins.py ``wave_kinds``),
found by name with :func:`kinds`.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from daemon import wire
from daemon.core.wave import Blob, Graph, Items, Names, Stream, Wave, WaveRun, Work
from daemon.core.waves import NOTHING, Step, WaveError, new_wave_id
from daemon.errors import BadInput, UserError
from daemon.sim.drive import Driver
from daemon.sim.network import DEFAULT_DELAY, START

# The kinds the simulator runs are the installation's (daemon/plugins.py): the built-in
# ones and those third-party packages declare under the entry-point group echofinn.waves.

DEADLINE = "deadline"  # the payload tag of a timer event
CLOCKS_MAX_NODES = 200  # vector clocks cost N integers per node and message


class Refused(UserError):
    """The kind cannot run on this topology (its ``refuse()`` sentence); exit 1."""


def kinds() -> dict[str, type[Wave]]:
    """The kinds the simulator runs, by name: every usable installed kind (daemon/plugins.py)."""
    from daemon.plugins import wave_kinds

    return dict(wave_kinds())


def kind_named(name: str) -> type[Wave]:
    """The kind called ``name``; BadInput naming the known ones (and a close one) otherwise."""
    known = kinds()
    if name in known:
        return known[name]
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise BadInput(f"unknown wave kind {name!r}{hint}; known: {', '.join(known)}")


def bound_problem(bound: Any, value: Any) -> str | None:
    """Why ``value`` is outside ``bound`` (a daemon/core/wave.py bound), or None: the
    edge's check (daemon/wire.py ``bound_problem``) on the value as the wire would carry
    it. A kind hands the node core values before packing: a tuple travels as a list, a set
    of names as a sorted list, a :class:`~daemon.core.wave.Stream` (echo's entries) as one
    bytes field."""
    if isinstance(bound, Blob) and isinstance(value, Stream):
        return None
    if isinstance(value, tuple) and isinstance(bound, (Names, Items)):
        value = list(value)
    elif isinstance(value, (set, frozenset)) and isinstance(bound, Names):
        value = sorted(value, key=str)
    elif isinstance(value, bytearray):
        value = bytes(value)
    return wire.bound_problem(bound, value)


def start_params(kind: type[Wave], given: dict[str, Any] | None) -> dict[str, Any]:
    """The kind's start parameters: ``given`` over its defaults, each checked against its
    bound. BadInput names an unknown, missing or out-of-bound parameter."""
    given = dict(given or {})
    for name in given:
        if name not in kind.params:
            known = ", ".join(kind.params) or "none"
            raise BadInput(f"{kind.name}: no start parameter {name!r} (its parameters: {known})")
    params = {**kind.defaults, **given}
    for name, bound in kind.params.items():
        if name not in params:
            raise BadInput(f"{kind.name}: start parameter {name} is required (--param {name}=VALUE)")
        why = bound_problem(bound, params[name])
        if why:
            raise BadInput(f"{kind.name}: start parameter {name} {why}")
    return params


@dataclass
class WaveSim:
    """One simulated wave of one kind: the run as ``check()`` sees it, its violations,
    and the simulator's counters."""

    kind: str
    seed: int
    dup: float
    graph: Graph
    params: dict[str, Any]
    run: WaveRun
    violations: list[str] = field(default_factory=list)
    events: int = 0
    time: float = 0.0  # simulated ms of the last event
    duplicates: int = 0  # duplicate deliveries the network scheduled
    max_in_flight: int = 0  # the most original messages in flight at once
    decision_times: list[float] = field(default_factory=list)  # ms, beside run.decisions
    tasks: list[tuple[str, str, float]] = field(default_factory=list)  # (node, task id, cost)
    refused: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dropped: int = 0  # deliveries to a node whose part was over
    limit: str | None = None
    unpreceded: list[tuple[str, ...]] | None = None  # per decision: nodes with no event before it
    trace: Any = None  # the run's daemon/trace/model.py Trace, when asked for (trace=True)

    @property
    def wave_property(self) -> bool | None:
        """Whether every decision follows an event at every node (None: not measured)."""
        return None if self.unpreceded is None else not any(self.unpreceded)

    @property
    def ok(self) -> bool:
        return not self.violations


class _Finished:
    """Where a node's instance was, once it said it was finished."""

    finished = True


FINISHED = _Finished()


class SimNode:
    """A :class:`~daemon.core.wave.WaveNode` in the simulator: one per node and wave.
    What an event does is buffered and committed by the harness when the event returns."""

    def __init__(self, sim: _Harness, index: int):
        graph = sim.graph
        me = graph.nodes[index]
        self._sim = sim
        self.index = index
        self.me = me
        self.parents = graph.parents(me)
        self.children = graph.children(me)
        self.neighbours = tuple(dict.fromkeys(self.parents + self.children))
        self.nodes = sim.node_set
        allowed = self.children if sim.kind.hears_from == "parents" else self.neighbours
        self._may_reach = frozenset(allowed)
        self.decided = False
        self.deadline_gen = 0
        self._reset()

    def _reset(self) -> None:
        self.sends: list[tuple[Hashable, object]] = []
        self.decisions: list[Any] = []
        self.tasks: list[tuple[str, float]] = []
        self.deadline: tuple[bool, float | None] = (False, None)
        self.refusals: list[str] = []

    @property
    def now(self) -> float:
        return self._sim.net.now / 1000.0

    def send(self, dest: str, msg: Any) -> None:
        sim = self._sim
        why = sim.message_problem(msg)
        if why is None and dest not in self._may_reach:
            if dest not in sim.index:
                why = f"{dest!r} is not a node"
            elif sim.kind.hears_from == "parents":
                why = f"{dest} hears only from its parents and {self.me} is not one"
            else:
                why = f"{dest} is not a neighbour"
        if why is not None:
            self.refusals.append(f"{self.me} -> {dest}: {why}")
            return
        self.sends.append((sim.index[dest], msg))

    def decide(self, result: Any = None) -> None:
        self.decisions.append(result)

    def sample(self, detail: bool = False) -> dict:
        return {"node": self.me, "sampled_at": round(self.now, 9), **self._sim.samples.get(self.me, {})}

    def enqueue(self, tasks: int, cost: float) -> list[str]:
        if not isinstance(tasks, int) or isinstance(tasks, bool) or tasks < 0:
            raise ValueError(f"enqueue: tasks must be an integer >= 0, got {tasks!r}")
        start = len(self.tasks) + self._sim.task_count(self.me)
        ids = [f"{self._sim.wave}/{self.me}/{start + k}" for k in range(tasks)]
        self.tasks.extend((i, float(cost)) for i in ids)
        return ids

    def set_deadline(self, at: float | None) -> None:
        self.deadline = (True, at)

    def budget(self) -> float | None:
        return None

    def work(self) -> Work:
        return Work(idle=True, sent=0, received=0)


class _Harness:
    def __init__(
        self,
        kind: type[Wave],
        graph: Graph,
        params: dict,
        wave: str,
        drive: Driver,
        result: WaveSim,
        samples: dict[str, dict] | None = None,
    ):
        self.kind = kind
        self.samples = samples or {}
        self.graph = graph
        self.params = params
        self.wave = wave
        self.drive = drive
        self.net = drive.net
        self.result = result
        self.index = {name: i for i, name in enumerate(graph.nodes)}
        self.node_set = frozenset(graph.nodes)
        self.nodes: list[SimNode | None] = [None] * len(graph.nodes)
        self.types = {m.cls: m for m in kind.messages}
        self.tasks_at: dict[str, int] = {}
        self.clocked = 0  # decisions whose clock has been read

    def record(self, now: float, p: int, w: Any, step: Step) -> None:
        vclocks = self.drive.vclocks
        decisions = self.result.run.decisions
        unpreceded = self.result.unpreceded
        if vclocks is None or unpreceded is None or self.clocked == len(decisions):
            return
        clock = vclocks.now(p)
        names = self.graph.nodes
        missing = tuple(names[q] for q, t in enumerate(clock) if t == 0)
        for _ in range(len(decisions) - self.clocked):
            unpreceded.append(missing)
        self.clocked = len(decisions)

    def task_count(self, name: str) -> int:
        return self.tasks_at.get(name, 0)

    def message_problem(self, msg: Any) -> str | None:
        mtype = self.types.get(type(msg))
        if mtype is None:
            return f"{type(msg).__name__} is not one of {self.kind.name}'s message types"
        if msg[0] != self.wave:
            return f"{mtype.name} of wave {msg[0]!r}, not {self.wave!r}"
        for name, bound in mtype.fields.items():
            value = getattr(msg, name)
            why = bound_problem(bound, value)
            if why is None and isinstance(bound, Names):
                strangers = [v for v in value if v not in self.node_set]
                why = f"names {strangers[0]!r}, not a node of the cluster" if strangers else None
            if why:
                return f"{mtype.name} field {name} {why}"
        return None

    def make(self, p: int) -> Wave:
        node = self.nodes[p] = SimNode(self, p)
        self.result.run.reached.add(node.me)
        return self.kind(node, self.wave, dict(self.params))

    def apply(self, w: Any, p: int, what: int, src: int | None, msg: Any) -> Step:
        result = self.result
        if w is FINISHED:
            result.dropped += 1
            return NOTHING
        node = self.nodes[p]
        assert node is not None  # made with the instance
        node._reset()
        try:
            if what == START and msg is None:
                w.start()
            elif what == START:
                if msg[1] != node.deadline_gen:
                    return NOTHING  # a deadline since replaced or cancelled
                node.deadline_gen += 1
                w.expire()
            else:
                assert src is not None  # a delivery has a sender
                w.receive(self.graph.nodes[src], msg)
        except WaveError:
            raise
        except Exception as exc:  # noqa: BLE001 - contained, as the node contains a wave that raises
            result.errors.append(f"{self.kind.name} raised {type(exc).__name__} at {node.me}: {exc}")
            return NOTHING
        now = self.net.now
        result.refused.extend(node.refusals)
        for r in node.decisions:
            if node.decided:
                result.violations.append(f"{node.me} decided more than once")
            node.decided = True
            result.run.decisions.append((node.me, r))
            result.decision_times.append(now)
        if node.tasks:
            self.tasks_at[node.me] = self.tasks_at.get(node.me, 0) + len(node.tasks)
            result.tasks.extend((node.me, i, c) for i, c in node.tasks)
        changed, at = node.deadline
        if changed:
            node.deadline_gen += 1
            if at is not None:
                self.net.start(max(now, at * 1000.0), p, (DEADLINE, node.deadline_gen))
        in_flight = self.net.in_flight + len(node.sends)
        if in_flight > result.max_in_flight:
            result.max_in_flight = in_flight
        if w.finished:
            self.drive.waves[p] = FINISHED
        return Step(node.sends, bool(node.decisions))


def _words(kind: type[Wave], result: Any, nodes: int) -> str:
    """A decision in the kind's words for a trace; "decided" when its describe() fails."""
    try:
        what = kind.describe(result, nodes)
    except Exception:  # noqa: BLE001 - a kind's words must not cost the run its trace
        return "decided"
    return what[:200] if isinstance(what, str) else "decided"


def simulate_wave(
    kind: type[Wave] | str,
    graph: Graph | Any,
    initiators: tuple[str, ...] | list[str] | None = None,
    params: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    dup: float = 0.0,
    delay: tuple[float, float] = DEFAULT_DELAY,
    max_events: int | None = None,
    clocks: bool | None = None,
    samples: dict[str, dict] | None = None,
    trace: bool = False,
) -> WaveSim:
    """Run one wave of ``kind`` (a class or a name of :func:`kinds`) on ``graph`` (a
    :class:`Graph` or a Topology) from ``initiators`` (default: the kind's
    ``initiators()``), with start ``params`` (over the kind's defaults).

    Raises :class:`Refused` (the kind's ``refuse()`` sentence) for a graph the kind
    cannot run on and BadInput for unknown initiators, too many of them, or bad
    parameters. The default event limit — 100 + 4·(N + 1)·(|E| + N) — is far above
    what the built-in kinds need (Chang–Roberts' N(N+1)/2 and the phase algorithm's
    D·|E| with D < N, duplicates included); a run that reaches it is cut short
    (``complete`` false) and the limit is a violation. ``clocks`` (default: on up to
    :data:`CLOCKS_MAX_NODES` nodes) keeps vector clocks for ``unpreceded``. ``samples``
    gives nodes' states beyond the default (``{name: {"load": 2.5}}``): what
    ``WaveNode.sample`` returns there, for kinds that read the node's state. ``trace``:
    record the run in the trace model (``WaveSim.trace``; daemon/sim/trace.py), each
    decision with its result.
    """
    if isinstance(kind, str):
        kind = kind_named(kind)
    if not isinstance(graph, Graph):
        graph = Graph.of(graph)
    reason = kind.refuse(graph)
    if reason is not None:
        raise Refused(f"{kind.name} cannot run on this topology: {reason}")
    chosen = tuple(initiators or ())
    for name in chosen:
        if name not in graph.nodes:
            raise BadInput(f"initiator {name!r} is not a node of the topology")
    starters = kind.initiators(graph, chosen)
    if not starters:
        raise BadInput(f"{kind.name}: no initiator")
    if kind.initiators_allowed == "one" and len(starters) > 1:
        raise BadInput(f"{kind.name} has one initiator, got {len(starters)}: {', '.join(starters)}")
    params = start_params(kind, params)
    n = len(graph.nodes)
    if max_events is None:
        max_events = 100 + 4 * (n + 1) * (len(graph.edges) + n)
    wave = new_wave_id(kind.tag or kind.name, seed & ((1 << 64) - 1), "sim")
    result = WaveSim(
        kind=kind.name, seed=seed, dup=dup, graph=graph, params=params, run=WaveRun(initiators=tuple(starters))
    )
    if clocks is None:
        clocks = n <= CLOCKS_MAX_NODES
    if clocks:
        result.unpreceded = []
    drive = Driver(n, seed, dup, delay=delay, clocks=clocks)
    sim = _Harness(kind, graph, params, wave, drive, result, samples)
    index = sim.index
    tracer = None
    if trace:
        from daemon.sim.trace import SimTracer

        def decided(w: Any, step: Any) -> Any:  # the instance's decision, buffered on its SimNode
            return w.node.decisions[0]

        tracer = SimTracer(graph.nodes, wave, kind.name, lambda w, step: _words(kind, decided(w, step), n), decided)
    drive.run([index[s] for s in dict.fromkeys(starters)], sim.make, sim.apply, sim.record, max_events, tracer=tracer)
    if tracer is not None:
        result.trace = tracer.trace(graph)
    names = graph.nodes
    run = result.run
    run.per_channel = {(names[a], names[b]): k for (a, b), k in drive.per_channel.items()}
    run.complete = drive.limit is None
    result.events = drive.events
    result.time = drive.net.now
    result.duplicates = drive.net.duplicates
    result.rejected = drive.rejected
    result.limit = drive.limit
    harness = result.violations
    result.violations = []
    if drive.limit:
        result.violations.append(f"stopped at the limit: {drive.limit}")
    result.violations += [f"refused send {r}" for r in result.refused]
    result.violations += [f"rejected: {r}" for r in result.rejected]
    result.violations += result.errors
    result.violations += harness
    if getattr(kind, "dependence", False) and result.unpreceded:
        for (p, _), missing in zip(run.decisions, result.unpreceded):
            if missing:
                shown = ", ".join(missing[:5]) + (f" ({len(missing)} nodes)" if len(missing) > 5 else "")
                result.violations.append(
                    f"{p} decided before any event at {shown} (a wave's decision follows an event at every node)"
                )
                break
    result.violations += kind.check(graph, run)
    return result
