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
"""

from __future__ import annotations

from typing import Hashable, Iterable, NamedTuple

from daemon.core.waves import NOTHING, Step, WaveError


class FinnSets(NamedTuple):
    wave: str
    inc: frozenset
    ninc: frozenset


class FinnWave:
    """One node's state in one Finn wave."""

    __slots__ = ("me", "wave", "ins", "outs", "inc", "ninc", "heard", "started", "decided", "sent")

    def __init__(self, me: Hashable, in_neighbours: Iterable[Hashable], out_neighbours: Iterable[Hashable], wave: str):
        self.me = me
        self.wave = wave
        self.ins = frozenset(in_neighbours)
        self.outs = tuple(out_neighbours)
        if me in self.ins or me in self.outs:
            raise ValueError(f"node {me!r} lists itself as a neighbour")
        self.inc: frozenset = frozenset((me,))
        self.ninc: frozenset = frozenset()
        self.heard: set = set()
        self.started = False  # initiated, or sent at least once
        self.decided = False
        self.sent = 0

    def initiate(self) -> Step:
        """Start the wave here (the operator's event at a source, or at one node of a
        source component). A repeated start does nothing."""
        if self.started:
            return NOTHING
        if not self.ins:  # heard from all of its zero in-neighbours
            self.ninc = self.ninc | {self.me}
        return self._broadcast()

    def receive(self, sender: Hashable, msg: FinnSets) -> Step:
        """Merge the sets ``sender`` sent. Raises :class:`WaveError` (and changes
        nothing) for a message of another wave or type, or from a node that is not an
        in-neighbour."""
        if type(msg) is not FinnSets:
            raise WaveError(f"{self.me}: wave {self.wave}: {type(msg).__name__} from {sender!r} is not a Finn message")
        if msg.wave != self.wave:
            raise WaveError(f"{self.me}: Finn sets of wave {msg.wave} from {sender!r} handed to wave {self.wave}")
        if sender not in self.ins:
            raise WaveError(f"{self.me}: Finn sets of wave {self.wave} from {sender!r}, which is not an in-neighbour")
        grew = False
        if not msg.inc <= self.inc:
            self.inc = self.inc | msg.inc
            grew = True
        if not msg.ninc <= self.ninc:
            self.ninc = self.ninc | msg.ninc
            grew = True
        self.heard.add(sender)
        if self.me not in self.ninc and len(self.heard) == len(self.ins):
            self.ninc = self.ninc | {self.me}
            grew = True
        return self._broadcast() if grew else NOTHING

    def _broadcast(self) -> Step:
        self.started = True
        msg = FinnSets(self.wave, self.inc, self.ninc)  # frozensets: safe to share
        sends = [(q, msg) for q in self.outs]
        self.sent += len(sends)
        decided_now = not self.decided and self.inc == self.ninc
        self.decided = self.decided or decided_now
        return Step(sends, decided_now)
