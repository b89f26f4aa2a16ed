"""Simulated echo waves: the pure :class:`~daemon.core.echo.EchoWave` driven over the
seeded :class:`~daemon.sim.network.Network`.

Theory of operation (ARCHITECTURE.md, "The waves" and "The node core"; Tel 6.2.3 for what is checked):

- One ``EchoWave`` per node, created when the first event of the wave reaches it, as
  the daemon does. The initiator gets a START event at time 0; every send the core
  returns goes to the network, which delivers it after a seeded delay (and sometimes
  twice). The run ends when the queue is empty, or at ``max_events`` / ``max_time``,
  which the run reports as ``limit`` rather than hanging. The default event limit
  (every send twice, plus the start) is never reached by a correct core: reaching it
  raises :class:`~daemon.sim.drive.EventLimitExceeded`.
- A node's sample is a small state dict: its CPU count and the simulated time of the
  sample (so a reader can see that samples are taken at different moments).
- What the run records is what the tests check against Tel's lemmas: messages sent
  (total, per node, per directed channel; exactly 2|E| and deg(p) per node), decisions
  with their time (exactly one, at the initiator), original messages still in flight
  at the decision (none), the initiator's entries (one per node) and whether their
  father pointers form a spanning tree rooted at the initiator.
- With ``traced=True`` the run keeps every accepted step as a trace
  (:mod:`daemon.sim.trace`, ``run.trace``), which ``ctl sim echo --trace FILE`` writes
  and ``ctl trace check`` judges.
- Duplicates still arrive after the decision (``after_decision``): a driver must keep a
  finished wave's state (or its id) long enough to recognise them, or a late duplicate
  would start the wave again at that node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from daemon.core.echo import EchoWave
from daemon.sim.drive import Driver, StepWave, apply_event
from daemon.sim.graph import IndexedGraph
from daemon.sim.network import DEFAULT_DELAY


@dataclass
class EchoRun:
    """What one simulated echo wave did. Node ids index ``names``."""

    seed: int
    dup: float
    names: tuple[str, ...]
    initiator: int
    links: int                                   # |E| of the undirected view
    messages: int = 0                            # sends by the wave (not counting duplicates)
    deliveries: int = 0                          # deliveries made, duplicates included
    duplicates: int = 0                          # duplicate deliveries the network scheduled
    events: int = 0
    time: float = 0.0                            # of the last event handled
    per_node: list[int] = field(default_factory=list)
    per_channel: dict[tuple[int, int], int] = field(default_factory=dict)
    decisions: list[tuple[float, int]] = field(default_factory=list)
    in_flight_at_decision: int | None = None     # first deliveries still queued then
    after_decision: int = 0                      # deliveries after it (duplicates, if all is well)
    entries: list[tuple[int, int | None, Any]] | None = None
    fathers: list[int | None] = field(default_factory=list)
    reached: list[bool] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # WaveError messages
    decision_clock: tuple[int, ...] | None = None
    final_clocks: list[tuple[int, ...]] | None = None  # every node's vector clock at the end
    limit: str | None = None
    trace: Any = None                            # a daemon.trace.model.Trace, with traced=True

    @property
    def decided_at(self) -> float | None:
        return self.decisions[0][0] if self.decisions else None

    @property
    def decided(self) -> list[str]:
        return [self.names[node] for _, node in self.decisions]

    @property
    def undecided(self) -> list[str]:
        return [] if self.decisions else [self.names[self.initiator]]

    @property
    def unreached(self) -> list[str]:
        return [name for name, r in zip(self.names, self.reached) if not r]

    def named_entries(self) -> list[tuple[str, str | None, Any]]:
        names = self.names
        return [(names[p], None if f is None else names[f], s) for p, f, s in self.entries or ()]

    def problems(self, graph: IndexedGraph) -> list[str]:
        """Every way this run broke echo's guarantees (empty when it kept them all)."""
        found = []
        if self.limit:
            found.append(f"stopped at the limit: {self.limit}")
        if self.rejected:
            found.append(f"{len(self.rejected)} messages rejected, first: {self.rejected[0]}")
        if len(self.decisions) != 1:
            found.append(f"{len(self.decisions)} decisions, expected exactly 1")
        elif self.decisions[0][1] != self.initiator:
            found.append(f"decided at {self.names[self.decisions[0][1]]}, not at the initiator")
        if self.messages != 2 * self.links:
            found.append(f"{self.messages} messages sent, expected 2|E| = {2 * self.links}")
        for p, sent in enumerate(self.per_node):
            if sent != len(graph.neighbours[p]):
                found.append(f"node {self.names[p]} sent {sent} messages, expected its degree {len(graph.neighbours[p])}")
                break
        if self.in_flight_at_decision:
            found.append(f"{self.in_flight_at_decision} messages still in flight at the decision")
        if self.decisions:
            tree = spanning_tree_problem(graph, self.initiator, self.entries or [])
            if tree:
                found.append(tree)
        return found


def spanning_tree_problem(graph: IndexedGraph, initiator: int, entries: list) -> str | None:
    """Why ``entries`` (node, father, state) is not one entry per node whose fathers
    form a spanning tree of ``graph``'s undirected view rooted at ``initiator``; None
    when it is."""
    names = graph.names
    n = len(graph)
    father: list[int | None] = [None] * n
    seen = [False] * n
    for node, dad, _ in entries:
        if seen[node]:
            return f"node {names[node]} has two entries"
        seen[node] = True
        father[node] = dad
    if len(entries) != n:
        missing = [names[i] for i in range(n) if not seen[i]]
        return f"{len(entries)} entries for {n} nodes; missing {', '.join(missing[:5])}"
    if father[initiator] is not None:
        return f"the initiator {names[initiator]} has a father"
    # Walk each node up to the root; ``state`` 2 marks nodes known to reach it.
    state = [0] * n
    state[initiator] = 2
    for start in range(n):
        path = []
        p = start
        while state[p] == 0:
            state[p] = 1
            path.append(p)
            dad = father[p]
            if dad is None:
                return f"node {names[p]} has no father but is not the initiator"
            if dad not in graph.neighbours[p]:
                return f"node {names[p]}'s father {names[dad]} is not a neighbour"
            p = dad
        if state[p] == 1:
            return f"father pointers form a cycle through {names[p]}"
        for q in path:
            state[q] = 2
    return None


def simulate_echo(
    topology,
    initiator: str | None = None,
    seed: int = 0,
    dup: float = 0.0,
    *,
    clocks: bool = False,
    delay: tuple[float, float] = DEFAULT_DELAY,
    max_events: int | None = None,
    max_time: float | None = None,
    wave: str = "echo-sim",
    traced: bool = False,
) -> EchoRun:
    """Run one echo wave from ``initiator`` (default: the first node) over a seeded
    network. ``topology`` is a Topology or an :class:`IndexedGraph`. Raises the
    topology's UnknownNode (a BadInput) for an initiator it does not have."""
    graph = topology if isinstance(topology, IndexedGraph) else IndexedGraph(topology)
    n = len(graph)
    root = 0 if initiator is None else graph.index(initiator)
    run = EchoRun(seed=seed, dup=dup, names=graph.names, initiator=root, links=graph.link_count)
    strict = max_events is None  # the default bound is never reached by a run that ends
    if max_events is None:
        max_events = 4 * (2 * run.links + n) + 100  # twice every send, duplicated: never reached
    drive = Driver(n, seed, dup, clocks=clocks, delay=delay)
    net = drive.net
    vclocks = drive.vclocks
    neighbours = graph.neighbours
    cpus = graph.cpus
    decided_event = 0  # the event that made the first decision

    def sampler(p: int):
        return lambda: {"cpus": cpus[p], "sampled_at": round(net.now, 6)}

    def make(p: int) -> StepWave:
        return StepWave(EchoWave, p, wave, neighbours=neighbours[p], sampler=sampler(p))

    def record(now: float, p: int, w: StepWave, step) -> None:
        nonlocal decided_event
        if step.decided:
            if not run.decisions:
                decided_event = drive.events
            run.decisions.append((now, p))
            run.in_flight_at_decision = net.in_flight
            if vclocks is not None:
                run.decision_clock = vclocks.now(p)

    tracer = None
    if traced:
        from daemon.sim.trace import SimTracer

        tracer = SimTracer(graph.names, wave, "echo", lambda w, step: f"decided: {len(w.result or ())}/{n} nodes")
    drive.run([root], make, apply_event, record, max_events, max_time, strict=strict, tracer=tracer)
    drive.fill(run)
    if tracer is not None:
        run.trace = tracer.trace(graph)
    events = run.events
    run.deliveries = events - 1 if events else 0  # every event but the START
    if run.decisions:  # every event handled after the one that decided first
        run.after_decision = events - decided_event
    waves = drive.waves
    run.fathers = [w.father if w is not None else None for w in waves]
    run.reached = [w is not None and w.joined for w in waves]
    if waves[root] is not None and waves[root].result is not None:
        run.entries = waves[root].result
    return run
