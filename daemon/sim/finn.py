"""Simulated Finn waves: the pure :class:`~daemon.core.finn.FinnWave` driven over the
seeded :class:`~daemon.sim.network.Network`.

Theory of operation (ARCHITECTURE.md, "The waves" and "The node core"; Finn 1979; Tel 6.2.6 for what is checked):

- One ``FinnWave`` per node, created when the first event of the wave reaches it. The
  initiators (by default ``Topology.finn_initiators()``: one node of every source
  component) get START events at time 0, in the order given. A caller may pass fewer,
  to watch what happens when a source does not initiate: its descendants never decide,
  and the run says so by name instead of hanging.
- The run ends when the queue is empty, or at ``max_events`` / ``max_time`` (reported
  as ``limit``). The default event limit is twice Tel's bound — at most 2N sends per
  directed channel, each possibly duplicated — plus the starts, so a correct core never
  reaches it and a core that re-floods forever is stopped: with the default, reaching
  it raises :class:`~daemon.sim.drive.EventLimitExceeded` (a bug, not a result).
- With ``trace=True`` every step is recorded as ``(time, node, inc, ninc, decided)``;
  the sets are the core's own frozensets (never copied: the core replaces them when
  they grow), so a trace costs one tuple per step. The tests check on it that
  p ∈ Inc_p, NInc_p ⊆ Inc_p, both only grow and q ∈ NInc_p ⇒ In_q ⊆ Inc_p.
- With ``traced=True`` the run keeps every accepted step as a trace of the trace model
  (:mod:`daemon.sim.trace`, ``run.trace``), which ``ctl sim finn --trace FILE`` writes
  and ``ctl trace check`` judges.
- With ``clocks=True`` every node keeps a vector clock and each decision records the
  deciding node's clock, so a test can check that it is causally after an event at
  every ancestor (Tel 6.2.6: Finn's decision depends on all of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from daemon.core.finn import FinnWave
from daemon.sim.drive import Driver, StepWave, apply_event
from daemon.sim.graph import IndexedGraph
from daemon.sim.network import DEFAULT_DELAY


@dataclass
class FinnRun:
    """What one simulated Finn wave did. Node ids index ``names``."""

    seed: int
    dup: float
    names: tuple[str, ...]
    initiators: list[int]
    messages: int = 0                              # sends by the wave (not counting duplicates)
    deliveries: int = 0                            # deliveries made, duplicates included
    duplicates: int = 0
    events: int = 0
    time: float = 0.0                              # of the last event handled
    per_node: list[int] = field(default_factory=list)
    per_channel: dict[tuple[int, int], int] = field(default_factory=dict)
    decisions: list[tuple[float, int]] = field(default_factory=list)  # in time order
    decision_clocks: dict[int, tuple[int, ...]] = field(default_factory=dict)
    decision_inc: dict[int, frozenset] = field(default_factory=dict)  # Inc_p right after p decided
    final_clocks: list[tuple[int, ...]] | None = None  # every node's vector clock at the end
    steps: list[tuple] = field(default_factory=list)  # (time, node, inc, ninc, decided)
    inc_sizes: list[int] = field(default_factory=list)   # final |Inc_p| (0: never woke)
    rejected: list[str] = field(default_factory=list)
    limit: str | None = None
    trace: object = None                           # a daemon.trace.model.Trace, with traced=True

    @property
    def decided(self) -> list[str]:
        return [self.names[node] for _, node in self.decisions]

    @property
    def undecided(self) -> list[str]:
        done = {node for _, node in self.decisions}
        return [name for i, name in enumerate(self.names) if i not in done]

    @property
    def last_decision(self) -> float | None:
        return self.decisions[-1][0] if self.decisions else None

    @property
    def max_per_channel(self) -> int:
        return max(self.per_channel.values(), default=0)

    def problems(self, expect_all: bool = True) -> list[str]:
        """Every way this run broke Finn's guarantees; ``expect_all`` when every source
        component initiated, so that every node must decide."""
        found = []
        n = len(self.names)
        if self.limit:
            found.append(f"stopped at the limit: {self.limit}")
        if self.rejected:
            found.append(f"{len(self.rejected)} messages rejected, first: {self.rejected[0]}")
        deciders = [node for _, node in self.decisions]
        if len(set(deciders)) != len(deciders):
            found.append("a node decided twice")
        if expect_all and self.undecided:
            shown = ", ".join(self.undecided[:5])
            found.append(f"{len(self.undecided)} nodes never decided: {shown}")
        if self.max_per_channel > 2 * n:
            (src, dst), most = max(self.per_channel.items(), key=lambda kv: (kv[1], kv[0]))
            found.append(f"channel {self.names[src]} -> {self.names[dst]} carried {most} messages, over 2N = {2 * n}")
        return found


def simulate_finn(
    topology,
    initiators: list[str] | None = None,
    seed: int = 0,
    dup: float = 0.0,
    *,
    clocks: bool = False,
    trace: bool = False,
    delay: tuple[float, float] = DEFAULT_DELAY,
    max_events: int | None = None,
    max_time: float | None = None,
    wave: str = "finn-sim",
    traced: bool = False,
) -> FinnRun:
    """Run one Finn wave started at ``initiators`` (default: one node of every source
    component) over a seeded network. ``topology`` is a Topology or an
    :class:`IndexedGraph`. Raises the topology's UnknownNode for a name it does not
    have."""
    graph = topology if isinstance(topology, IndexedGraph) else IndexedGraph(topology)
    n = len(graph)
    starters = graph.finn_initiators() if initiators is None else [graph.index(name) for name in initiators]
    run = FinnRun(seed=seed, dup=dup, names=graph.names, initiators=starters)
    strict = max_events is None  # the default bound is never reached by a run that ends
    if max_events is None:
        max_events = 2 * (2 * n * graph.edge_count) + len(starters) + 100
    drive = Driver(n, seed, dup, clocks=clocks, delay=delay)
    vclocks = drive.vclocks
    ins, outs = graph.ins, graph.outs
    steps = run.steps

    def make(p: int) -> StepWave:
        return StepWave(FinnWave, p, wave, parents=ins[p], children=outs[p])

    def record(now: float, p: int, w: StepWave, step) -> None:
        if trace:
            steps.append((now, p, w.inc, w.ninc, step.decided))
        if step.decided:
            run.decisions.append((now, p))
            run.decision_inc[p] = w.inc
            if vclocks is not None:
                run.decision_clocks[p] = vclocks.now(p)

    tracer = None
    if traced:
        from daemon.sim.trace import SimTracer

        tracer = SimTracer(graph.names, wave, "finn", lambda w, step: f"decided: |Inc| = {len(w.inc)}")
    drive.run(starters, make, apply_event, record, max_events, max_time, strict=strict, tracer=tracer)
    drive.fill(run)
    if tracer is not None:
        run.trace = tracer.trace(graph)
    run.deliveries = run.events - len(starters)
    waves = drive.waves
    run.inc_sizes = [len(w.inc) if w is not None else 0 for w in waves]
    return run


def ancestors(graph: IndexedGraph) -> list[set[int]]:
    """For each node, the nodes with a directed path to it (itself included).
    O(N·E): for checks on small graphs."""
    n = len(graph)
    result = []
    for p in range(n):
        seen = {p}
        stack = [p]
        while stack:
            v = stack.pop()
            for u in graph.ins[v]:
                if u not in seen:
                    seen.add(u)
                    stack.append(u)
        result.append(seen)
    return result


def ancestor_problems(run: FinnRun, graph: IndexedGraph) -> list[str]:
    """Decisions that do not rest on exactly the deciding node's ancestors (Tel 6.2.6:
    at the decision Inc_p = NInc_p = p and its ancestors) or, when the run kept vector
    clocks, that are not causally after an event at every ancestor. O(N·E): for small
    networks."""
    found = []
    names = graph.names
    above = ancestors(graph)
    for _, p in run.decisions:
        inc = run.decision_inc[p]
        if inc != above[p]:
            missing = sorted(above[p] - inc)
            extra = sorted(inc - above[p])
            found.append(f"{names[p]} decided with Inc missing ancestors "
                         f"{', '.join(names[a] for a in missing[:5]) or 'none'} "
                         f"and holding non-ancestors {', '.join(names[a] for a in extra[:5]) or 'none'}")
        clock = run.decision_clocks.get(p)
        if clock is not None:
            missed = sorted(a for a in above[p] if clock[a] < 1)
            if missed:
                shown = ", ".join(names[a] for a in missed[:5])
                found.append(f"{names[p]} decided before hearing of an event at its ancestors {shown}")
    return found
