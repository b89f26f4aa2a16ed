"""The simulated network: an event queue keyed (time, sequence), seeded delays and
duplicates, no loss.

Theory of operation (ARCHITECTURE.md, "The node core"; TigerBeetle's VOPR, FoundationDB's simulator):

- Every send is delivered once after its own random delay, drawn from the stream
  ``network-delays``. Because each message draws separately, two messages on the same
  channel can overtake each other: the waves must not assume FIFO channels (Finn's
  algorithm only unions sets; echo counts distinct senders) and the simulator makes
  sure they do not.
- With probability ``dup`` (stream ``network-duplicates``) a send is delivered a second
  time, later than the first. The duplicate draws its extra delay from the duplicates
  stream, so turning duplicates on or off leaves every original delivery time exactly
  as it was.
- Nothing is lost: both waves assume reliable channels (Tel 6.1), and the daemon's
  retransmission, not the wave, is what provides that.
- Ties in time are broken by a sequence number given at scheduling, so the order of
  events is a function of the seed alone, never of heap internals or hash order.

The queue holds plain tuples ``(time, seq, kind, src, dst, payload, stamp)`` rather
than objects: a 100,000-node echo schedules 200,000 of them.
"""

from __future__ import annotations

import heapq
import random
from typing import Any, Hashable

from daemon.sim.seeds import NETWORK_DELAYS, NETWORK_DUPLICATES, subseed

# Kinds of event, in the tuple's third field.
DELIVER = 0    # the first delivery of a send
DUPLICATE = 1  # the network delivering that send a second time
START = 2      # an operator's event at a node (initiating a wave), no sender

# Delays in simulated milliseconds: a LAN-like hop, wide enough to reorder freely.
DEFAULT_DELAY = (0.5, 1.5)

Event = tuple  # (time, seq, kind, src, dst, payload, stamp)


class Network:
    """The event queue and the delivery model of one run.

    ``seed`` is the run seed (sub-seeds are derived here); ``dup`` the probability that a
    send is delivered twice; ``delay`` the (low, high) range of a delivery's delay.
    Raises ValueError for a probability outside [0, 1) or a bad delay range.
    """

    __slots__ = ("now", "dup", "_low", "_span", "_delays", "_dups", "_queue", "_seq",
                 "sends", "duplicates", "in_flight")

    def __init__(self, seed: int, dup: float = 0.0, delay: tuple[float, float] = DEFAULT_DELAY):
        if not 0.0 <= dup < 1.0:
            raise ValueError(f"duplicate probability must be in [0, 1), got {dup}")
        low, high = delay
        if not 0.0 < low <= high:
            raise ValueError(f"delay range must satisfy 0 < low <= high, got {delay}")
        self.now = 0.0
        self.dup = dup
        self._low = low
        self._span = high - low
        self._delays = random.Random(subseed(seed, NETWORK_DELAYS))
        self._dups = random.Random(subseed(seed, NETWORK_DUPLICATES))
        self._queue: list[Event] = []
        self._seq = 0
        self.sends = 0        # sends handed to the network
        self.duplicates = 0   # duplicate deliveries scheduled
        self.in_flight = 0    # first deliveries scheduled and not yet made

    def start(self, time: float, node: Hashable, payload: Any = None) -> None:
        """Schedule an operator's event at ``node`` (no sender, no stamp)."""
        self._seq += 1
        heapq.heappush(self._queue, (time, self._seq, START, None, node, payload, None))

    def send(self, src: Hashable, dst: Hashable, payload: Any, stamp: Any = None) -> None:
        """Hand a message to the network at the current time; ``stamp`` travels with it
        (the sender's vector clock, when the driver keeps clocks)."""
        at = self.now + self._low + self._span * self._delays.random()
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, DELIVER, src, dst, payload, stamp))
        self.sends += 1
        self.in_flight += 1
        if self.dup and self._dups.random() < self.dup:
            again = at + self._low + self._span * self._dups.random()
            self._seq += 1
            heapq.heappush(self._queue, (again, self._seq, DUPLICATE, src, dst, payload, stamp))
            self.duplicates += 1

    def next(self) -> Event | None:
        """The next event (advancing ``now`` to its time), or None when nothing is left."""
        if not self._queue:
            return None
        event = heapq.heappop(self._queue)
        self.now = event[0]
        if event[2] == DELIVER:
            self.in_flight -= 1
        return event

    def __len__(self) -> int:
        """Events still queued, duplicates included."""
        return len(self._queue)
