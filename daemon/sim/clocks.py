"""Vector clocks for simulated runs (Fidge 1988, Mattern 1989; Tel 2.3.3).

Each node keeps one counter per node. Events at a node are the operator's start, each
receive and each send; each ticks the node's own counter. A send stamps the message
with a copy of the sender's clock after the tick; a receive first takes the entrywise
maximum of the node's clock and the stamp, then ticks. Then event e happened before
event f exactly when clock(e) <= clock(f) entrywise and they differ, and
``clock(f)[q] >= 1`` says that some event at q happened before f (or is f).

Full vectors cost N integers per node and per message: the drivers keep clocks only
when asked (tests, small runs), never in the scale benchmarks.
"""

from __future__ import annotations


class VectorClocks:
    """The clocks of nodes ``0 .. n-1``."""

    __slots__ = ("clocks",)

    def __init__(self, n: int):
        self.clocks = [[0] * n for _ in range(n)]

    def local(self, node: int) -> None:
        """An event with no message: the operator's start."""
        self.clocks[node][node] += 1

    def send(self, node: int) -> tuple[int, ...]:
        """A send event at ``node``: tick, and return the stamp the message carries."""
        clock = self.clocks[node]
        clock[node] += 1
        return tuple(clock)

    def receive(self, node: int, stamp: tuple[int, ...]) -> None:
        """A receive event at ``node`` of a message stamped ``stamp``."""
        clock = self.clocks[node]
        for q, t in enumerate(stamp):
            if t > clock[q]:
                clock[q] = t
        clock[node] += 1

    def now(self, node: int) -> tuple[int, ...]:
        """A copy of ``node``'s clock (to record at a decision)."""
        return tuple(self.clocks[node])
