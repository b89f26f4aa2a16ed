"""Finn's algorithm, one node's part of one wave.

Theory of operation (S. G. Finn, "Resynch procedures and a fail-safe network
protocol", IEEE Trans. Communications 27(6), 1979; Tel, *Introduction to Distributed
Algorithms*, 2nd ed., algorithm 6.9, section 6.2.6):

The wave runs on the *directed* topology (parent → child). Every node p keeps two sets
of node ids:

- Inc_p:  the nodes known to have had an event that causally precedes p's latest one.
          Initially {p}.
- NInc_p: the nodes q all of whose in-neighbours are known to be in Inc_p.
          Initially {}.

Rules [Tel 6.9]:

- On a message (Inc, NInc) from q: Inc_p ∪= Inc; NInc_p ∪= NInc; q is heard. When every
  in-neighbour has been heard, p ∈ NInc_p. Whenever either set grew, send
  (Inc_p, NInc_p) to every out-neighbour. When Inc_p = NInc_p, p decides, once; it keeps
  forwarding afterwards (its successors may still need its final sets).
- Messages only union sets, so reordering and duplicates are harmless.
- A node with no in-neighbours hears from nobody: it joins NInc_p when it initiates.
  Every such source must initiate, or its descendants wait forever. In general one node
  of every *source component* (a strongly connected component with no edge coming in
  from outside it) must initiate; ``Topology.finn_initiators()`` names them.

Consequences checked by the tests: in a strongly connected network everyone decides
and each decision depends on all N nodes; in a DAG a node decides when
Inc_p = NInc_p = p and all its ancestors; on an out-tree the wave is a broadcast of N−1
messages; a channel carries at most 2N messages (Inc grows at most N−1 times, NInc at
most N), each O(N) ids.

Mistakes this module avoids (each seen in public versions of this lab): resetting the
sets after forwarding, sending only after hearing every in-neighbour (deadlocks on
cycles), a deciding node that stops forwarding, sources that never enter NInc, no wave
ids, re-flooding on every receipt.

On the wave interface (daemon/core/wave.py): one message, ``finn`` (Inc and NInc, node
names of the cluster, which the node checks); a node hears from its in-neighbours only
(``hears_from = "parents"``); any number of initiators (one per source component; a
repeated start does nothing); parameters ``tasks`` and ``cost``: the decision's action
is ``node.enqueue(tasks, cost)``, then ``node.decide`` with the sends so far and the
task ids (reported as ``finn.decided``). State per node: O(N) ids.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from daemon.core.messages import MAX_COST, MAX_TASKS
from daemon.core.wave import Graph, Int, MessageType, Names, Num, Wave
from daemon.core.waves import WaveError


class FinnSets(NamedTuple):
    wave: str
    inc: frozenset
    ninc: frozenset


class FinnWave(Wave):
    """One node's state in one Finn wave."""

    name = "finn"
    tag = "f"
    summary = "Tel 6.9: every node decides once it knows all its ancestors did an event; each enqueues TASKS tasks"
    messages = (MessageType("finn", FinnSets, {"inc": Names(), "ninc": Names()}),)
    params = {"tasks": Int(0, MAX_TASKS), "cost": Num(0.0, MAX_COST)}
    defaults = {"tasks": 1, "cost": 1.0}
    hears_from = "parents"
    initiators_allowed = "many"
    __slots__ = ("me", "ins", "outs", "inc", "ninc", "heard", "started", "decided", "sent")

    def __init__(self, node, wave: str, params: dict[str, Any] | None = None):
        super().__init__(node, wave, params if params is not None else {})
        me = self.me = node.me
        self.ins = frozenset(node.parents)
        self.outs = tuple(node.children)
        if me in self.ins or me in self.outs:
            raise ValueError(f"node {me!r} lists itself as a neighbour")
        self.inc: frozenset = frozenset((me,))
        self.ninc: frozenset = frozenset()
        self.heard: set = set()
        self.started = False  # initiated, or sent at least once
        self.decided = False
        self.sent = 0

    def start(self) -> None:
        """Start the wave here (the operator's event at a source, or at one node of a
        source component). A repeated start does nothing."""
        if self.started:
            return
        if not self.ins:  # heard from all of its zero in-neighbours
            self.ninc = self.ninc | {self.me}
        self._broadcast()

    initiate = start

    def receive(self, sender, msg) -> None:
        """Merge the sets ``sender`` sent. Raises :class:`WaveError` (and changes
        nothing) for a message of another wave or type, or from a node that is not an
        in-neighbour."""
        if type(msg) is not FinnSets:
            raise WaveError(f"{self.me}: wave {self.wave}: {type(msg).__name__} from {sender!r} is not a Finn message")
        if msg.wave != self.wave:
            raise WaveError(f"{self.me}: Finn sets of wave {msg.wave} from {sender!r} handed to wave {self.wave}")
        if sender not in self.ins:
            raise WaveError(f"{self.me}: Finn sets of wave {self.wave} from {sender!r}, which is not an in-neighbour")
        inc, ninc = msg.inc, msg.ninc
        if type(inc) is not frozenset:  # lists off the wire; frozensets between cores
            inc = frozenset(inc)
        if type(ninc) is not frozenset:
            ninc = frozenset(ninc)
        grew = False
        if not inc <= self.inc:
            self.inc = self.inc | inc
            grew = True
        if not ninc <= self.ninc:
            self.ninc = self.ninc | ninc
            grew = True
        self.heard.add(sender)
        if self.me not in self.ninc and len(self.heard) == len(self.ins):
            self.ninc = self.ninc | {self.me}
            grew = True
        if grew:
            self._broadcast()

    def _broadcast(self) -> None:
        self.started = True
        msg = FinnSets(self.wave, self.inc, self.ninc)  # frozensets: safe to share
        node = self.node
        for q in self.outs:
            node.send(q, msg)
        self.sent += len(self.outs)
        if not self.decided and self.inc == self.ninc:
            self.decided = True
            self._decide()

    def _decide(self) -> None:
        """The decision's action: this node enqueues the wave's tasks, then reports."""
        ids = self.node.enqueue(self.params.get("tasks", 0), self.params.get("cost", 1.0))
        self.node.decide({"sent": self.sent, "enqueued": ids})

    # --- the kind as a whole -----------------------------------------------------------

    @classmethod
    def initiators(cls, graph: Graph, chosen: tuple[str, ...] = ()) -> tuple[str, ...]:
        """One node of every source component (``chosen`` if given)."""
        return chosen or tuple(source_components(graph))

    @classmethod
    def deciders(cls, graph: Graph, initiators: tuple[str, ...]) -> int:
        """Every node the initiators reach decides."""
        seen, todo = set(initiators), list(initiators)
        while todo:
            for c in graph.children(todo.pop()):
                if c not in seen:
                    seen.add(c)
                    todo.append(c)
        return len(seen)

    @classmethod
    def check(cls, graph: Graph, run) -> list[str]:
        """Each node decides at most once; in a complete run every node decides."""
        problems = []
        deciders = [n for n, _ in run.decisions]
        twice = sorted({n for n in deciders if deciders.count(n) > 1})
        if twice:
            problems.append(f"decided twice: {', '.join(map(str, twice))}")
        if run.complete and set(deciders) != set(graph.nodes):
            problems.append(f"undecided: {', '.join(str(n) for n in graph.nodes if n not in set(deciders))}")
        return problems


    @classmethod
    def describe(cls, result, nodes: int) -> str:
        n = len(result.get("enqueued", ())) if type(result) is dict else 0
        return f"enqueued {n} task{'' if n == 1 else 's'}"


def source_components(graph: Graph) -> list[str]:
    """The first node (in the graph's order) of every strongly connected component with
    no edge coming in from outside it: where Finn's wave must start."""
    order = {n: k for k, n in enumerate(graph.nodes)}

    def reach(n, step):
        seen, todo = {n}, [n]
        while todo:
            for q in step(todo.pop()):
                if q not in seen:
                    seen.add(q)
                    todo.append(q)
        return seen

    out = []
    done: set = set()
    for n in graph.nodes:
        if n in done:
            continue
        comp = reach(n, graph.children) & reach(n, graph.parents)
        done |= comp
        if all(p in comp for c in comp for p in graph.parents(c)):
            out.append(min(comp, key=order.__getitem__))
    return sorted(out, key=order.__getitem__)
