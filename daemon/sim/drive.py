"""The event loop shared by the simulated waves (:mod:`daemon.sim.echo`,
:mod:`daemon.sim.finn`): one wave instance per node (any kind of daemon/core/wave.py,
held by a :class:`StepWave`), driven over a seeded :class:`~daemon.sim.network.Network`.

:class:`SimNode` is the simulator's :class:`daemon.core.wave.WaveNode`: what an instance
sends and decides in one event is collected, and :class:`StepWave` hands each event to
the instance and returns the event's :class:`~daemon.core.waves.Step` (its sends, and
whether the node decided), as the loop and the tests of the bare algorithms use it.

What the loop does for every event, whatever the algorithm: stop at ``max_events`` or
past ``max_time`` (saying so in ``limit`` rather than hanging, or raising
:class:`EventLimitExceeded` with ``strict=True``), create the node's wave
object when the first event reaches it (as the daemon does), apply the event and keep
a WaveError as a rejection, advance the vector clocks when the run keeps them, let the
algorithm record the step (and a tracer, when the run is traced: daemon/sim/trace.py), then hand the step's sends to the network, counted per node
and per directed channel. What a step means (decisions, traces) is the algorithm's.
"""

from __future__ import annotations

from typing import Any, Callable

from daemon.core.wave import Work
from daemon.core.waves import NOTHING, Step, WaveError
from daemon.sim.clocks import VectorClocks
from daemon.sim.network import DEFAULT_DELAY, START, Network


class SimNode:
    """The node as one simulated wave instance sees it (daemon/core/wave.py WaveNode):
    names are whatever the simulator uses (indices), the clock is ``clock()`` (0 without
    one), a sample is ``sampler()`` (None without one), enqueued tasks get made-up ids,
    there is no budget and no work. Sends and the decision of the current event wait in
    :attr:`sends` and :attr:`decided_now` until :meth:`step` takes them."""

    __slots__ = ("me", "parents", "children", "neighbours", "nodes", "sampler", "clock", "sends", "decided",
                 "decided_now", "result", "deadline", "tasks")

    def __init__(self, me, parents=(), children=(), neighbours=None, nodes=frozenset(), sampler=None, clock=None):
        self.me = me
        self.parents = tuple(parents)
        self.children = tuple(children)
        self.neighbours = tuple(dict.fromkeys(self.parents + self.children)) if neighbours is None else tuple(neighbours)
        self.nodes = nodes
        self.sampler = sampler
        self.clock = clock
        self.sends: list = []
        self.decided = False
        self.decided_now = False
        self.result = None
        self.deadline = None
        self.tasks = 0

    @property
    def now(self) -> float:
        return self.clock() if self.clock is not None else 0.0

    def send(self, dest, msg) -> None:
        self.sends.append((dest, msg))

    def decide(self, result=None) -> None:
        if not self.decided:
            self.decided = self.decided_now = True
            self.result = result

    def sample(self, detail: bool = False):
        return self.sampler() if self.sampler is not None else None

    def enqueue(self, tasks: int, cost: float) -> list:
        first = self.tasks
        self.tasks += tasks
        return [f"{self.me}:{k}" for k in range(first + 1, self.tasks + 1)]

    def set_deadline(self, at) -> None:
        self.deadline = at

    def budget(self):
        return None

    def work(self) -> Work:
        return Work(True, 0, 0)

    def step(self) -> Step:
        """The sends and decision of the event just handled (NOTHING if none)."""
        if not self.sends and not self.decided_now:
            return NOTHING
        step = Step(self.sends, self.decided_now)
        self.sends = []
        self.decided_now = False
        return step


class StepWave:
    """One instance of wave ``kind`` at node ``me``, each event returning its Step. A
    WaveError leaves no sends behind. The instance's attributes read through (``w.inc``,
    ``w.result``). ``sample``, where an event takes it, replaces the node's sampler."""

    __slots__ = ("wave", "node")

    def __init__(self, kind: type, me, wave: str, params: dict | None = None, *, parents=(), children=(),
                 neighbours=None, nodes=frozenset(), sampler=None, clock=None):
        self.node = SimNode(me, parents, children, neighbours, nodes, sampler, clock)
        self.wave = kind(self.node, wave, dict(kind.defaults) if params is None else params)

    def _run(self, event, *args) -> Step:
        try:
            event(*args)
        except BaseException:
            self.node.sends = []
            self.node.decided_now = False
            raise
        return self.node.step()

    def start(self, sample=None) -> Step:
        if sample is not None:
            self.node.sampler = sample
        return self._run(self.wave.start)

    initiate = start

    def receive(self, sender, msg, sample=None) -> Step:
        if sample is not None:
            self.node.sampler = sample
        return self._run(self.wave.receive, sender, msg)

    def expire(self) -> Step:
        return self._run(self.wave.expire)

    give_up = expire

    def presample(self, sample=None) -> None:
        if sample is not None:
            self.node.sampler = sample
        self._run(self.wave.presample)

    def __getattr__(self, name):
        return getattr(self.wave, name)


def apply_event(w: StepWave, p: int, kind: int, src, msg) -> Step:
    """The generic event: START starts the instance, anything else is a delivery."""
    return w.start() if kind == START else w.receive(src, msg)


class EventLimitExceeded(RuntimeError):
    """A simulated run handled more events than its limit: it livelocks or never ends.
    Raised, not reported, where the caller expects every run to end (tests, balancing
    runs), so that a stuck run fails at once instead of hanging its caller."""


class EventBudget:
    """A hard limit on the events of one simulated run, for event loops of their own
    (``spend()`` once per event raises :class:`EventLimitExceeded` past ``limit``)."""

    __slots__ = ("limit", "spent", "what")

    def __init__(self, limit: int, what: str = "simulated run"):
        if limit < 1:
            raise ValueError(f"an event limit must be at least 1, got {limit}")
        self.limit = limit
        self.spent = 0
        self.what = what

    def spend(self, queued: int | None = None) -> None:
        self.spent += 1
        if self.spent > self.limit:
            still = f", {queued} still queued" if queued is not None else ""
            raise EventLimitExceeded(f"{self.what}: more than {self.limit} events{still}; "
                                     "a run that should end did not")


class Driver:
    """One run's network, clocks and counters over nodes ``0 .. n-1``.

    Build it, give the algorithm's callbacks access to it (``net.now``,
    ``net.in_flight``, ``vclocks``, ``events``), call :meth:`run` once, then
    :meth:`fill` the run's record with the counters every wave keeps.
    """

    __slots__ = ("net", "vclocks", "waves", "per_node", "per_channel", "events", "rejected", "limit")

    def __init__(self, n: int, seed: int, dup: float = 0.0, *, clocks: bool = False,
                 delay: tuple[float, float] = DEFAULT_DELAY):
        self.net = Network(seed, dup=dup, delay=delay)
        self.vclocks = VectorClocks(n) if clocks else None
        self.waves: list[Any] = [None] * n           # a node's wave object, once reached
        self.per_node = [0] * n                      # sends by each node
        self.per_channel: dict[tuple[int, int], int] = {}
        self.events = 0                              # events handled so far
        self.rejected: list[str] = []                # WaveError messages
        self.limit: str | None = None

    def run(
        self,
        starters: list[int],
        make: Callable[[int], Any],
        apply: Callable[[Any, int, int, Any, Any], Any],
        record: Callable[[float, int, Any, Any], None],
        max_events: int,
        max_time: float | None = None,
        *,
        strict: bool = False,
        tracer: Any = None,
    ) -> None:
        """Start the wave at ``starters`` (at time 0, in that order) and handle events
        until none is left or a limit is hit: reported in ``limit``, or with ``strict``
        raised as :class:`EventLimitExceeded` (``max_events`` only: a time limit is a
        question the caller asks, an event limit a run that does not end).

        ``make(p)`` creates node ``p``'s wave object; ``apply(w, p, kind, src, msg)``
        hands it one event (``kind`` START, with ``src`` and ``msg`` None, or a
        delivery) and returns the core's step, with ``sends`` of ``(dst, msg)``;
        ``record(now, p, w, step)`` sees every accepted step after the clocks moved and
        before its sends go out; so does ``tracer(now, p, w, kind, src, msg, step, n)``
        when given (a :class:`daemon.sim.trace.SimTracer`), ``n`` being the message's
        number on its channel, which travels beside the vector clock's stamp.
        """
        net = self.net
        vclocks = self.vclocks
        waves = self.waves
        per_node = self.per_node
        per_channel = self.per_channel
        for p in starters:
            net.start(0.0, p)
        events = 0
        while True:
            if events >= max_events:
                self.limit = f"{max_events} events handled, {len(net)} still queued"
                if strict:
                    raise EventLimitExceeded(f"simulated wave: {self.limit}; a run that should end did not")
                break
            event = net.next()
            if event is None:
                break
            now, _, kind, src, dst, msg, stamp = event
            if tracer is not None:
                stamp, n = stamp if stamp is not None else (None, None)
            if max_time is not None and now > max_time:
                self.limit = f"simulated time passed {max_time} ms, {len(net) + 1} events still queued"
                break
            events += 1
            self.events = events
            w = waves[dst]
            if w is None:
                w = waves[dst] = make(dst)
            try:
                step = apply(w, dst, kind, src, msg)
            except WaveError as exc:
                self.rejected.append(str(exc))
                continue
            if vclocks is not None:
                if kind == START:
                    vclocks.local(dst)
                else:
                    vclocks.receive(dst, stamp)
            record(now, dst, w, step)
            if tracer is not None:
                tracer(now, dst, w, kind, src, msg, step, n)
            for q, m in step.sends:
                stamp = vclocks.send(dst) if vclocks is not None else None
                if tracer is not None:
                    stamp = (stamp, tracer.sent(dst, q))
                net.send(dst, q, m, stamp)
                per_node[dst] += 1
                key = (dst, q)
                per_channel[key] = per_channel.get(key, 0) + 1

    def fill(self, run) -> None:
        """Copy the counters every simulated wave reports onto ``run`` (an EchoRun or a
        FinnRun): events, time, messages, duplicates, sends per node and per channel,
        rejections, the limit and, with clocks, every node's final clock."""
        net = self.net
        run.events = self.events
        run.time = net.now
        run.messages = net.sends
        run.duplicates = net.duplicates
        run.per_node = self.per_node
        run.per_channel = self.per_channel
        run.rejected = self.rejected
        run.limit = self.limit
        if self.vclocks is not None:
            run.final_clocks = [tuple(c) for c in self.vclocks.clocks]
