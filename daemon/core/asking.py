"""When a node asks its balancer for a round: at once, but at most once per gap.

A balancer that only balances on its clock leaves a burst waiting for the next round
(ARCHITECTURE.md, "Balancing"). So a node tells the operator that watches it
(``balance.watch``, daemon/core/messages.py; the supervisor's balancer,
daemon/cluster/balancer.py) when something it sees may call for a round:

- ``queued``: new work landed here (a submit, a Finn wave, the topology's initial
  tasks) and some of it waits for a slot;
- ``idle``: a task ended and left a slot free with nothing queued here.

:class:`Asker` is the debounce, with time passed in (no clock here: the node core is
pure, tests/core/test_purity.py): the first ask goes out at once; asks within ``gap``
seconds of the last one sent are merged into a single one sent when the gap ends (the
reason ``queued`` wins over ``idle``: work waiting is the stronger case). A node so
sends at most one ``balance.wanted`` per ``gap``, whatever it is asked; the balancer
keeps at most one round in flight. Without a watcher nothing is asked.

:class:`RoundGate` is the balancer's side, pure too (the supervisor's balancer,
daemon/cluster/balancer.py, and the simulator's, daemon/sim/balance.py): when a round
starts, on a clock and at the asks, never two at once.
"""

from __future__ import annotations

ASK_GAP = 0.1  # seconds: a node asks its balancer at most this often
ASKED_GAP = 0.05  # seconds from the start of one round to the next one a node asked for
REASONS = ("queued", "idle")  # the strongest first


class Asker:
    """One node's asks for a balancing round; ``watcher`` is the operator's routing id."""

    def __init__(self, gap: float = ASK_GAP):
        self.gap = gap
        self.watcher: bytes | None = None
        self.last_sent: float | None = None  # when the latest ask went out
        self.pending: str | None = None  # the reason of an ask held back by the gap

    def watch(self, watcher: bytes | None) -> None:
        """From now on ask ``watcher`` (None: nobody); a held-back ask is dropped."""
        self.watcher = watcher
        self.pending = None

    def want(self, reason: str, now: float) -> str | None:
        """Something calls for a round: the reason to send now, or None (nobody watches,
        or it is held back until :meth:`due`)."""
        if self.watcher is None:
            return None
        if self.last_sent is None or now - self.last_sent >= self.gap:
            self.last_sent = now
            self.pending = None
            return reason
        if self.pending is None or REASONS.index(reason) < REASONS.index(self.pending):
            self.pending = reason
        return None

    def due(self) -> float | None:
        """When a held-back ask may go (None: none is held back)."""
        if self.pending is None or self.last_sent is None:
            return None
        return self.last_sent + self.gap

    def take(self, now: float) -> str | None:
        """The held-back ask's reason if its time has come (it is then sent), else None."""
        due = self.due()
        if due is None or now < due:
            return None
        reason, self.pending = self.pending, None
        self.last_sent = now
        return reason


class RoundGate:
    """When the balancer starts a round; pure (``now`` passed in), one thread's.

    ``interval``: the clock, seconds from a round's start to the next (0: no clock, asks
    only). :meth:`start` says whether a round starts now, :meth:`finish` that it ended;
    between the two, :meth:`ask` only marks that one more round is due after it."""

    def __init__(self, interval: float, now: float, asked_gap: float = ASKED_GAP):
        self.interval = interval
        self.asked_gap = asked_gap
        self.running = False
        self.asked = False  # a round is asked for (and not started yet)
        self.work_waiting = True  # the latest round saw queued tasks: an idle slot matters
        self.last_start: float | None = None
        self.next_clock = now + interval if interval > 0 else None

    def ask(self, reason: str, now: float) -> bool:
        """A node asked for a round (``reason`` from daemon/core/asking.py; anything but
        ``idle`` always counts). Returns whether it counted."""
        if reason == "idle" and not self.work_waiting:
            return False
        self.asked = True
        return True

    def due(self) -> float | None:
        """When the next round should start (None: not before an ask)."""
        times = []
        if self.next_clock is not None:
            times.append(self.next_clock)
        if self.asked:
            times.append(self.last_start + self.asked_gap if self.last_start is not None else float("-inf"))
        return min(times) if times else None

    def start(self, now: float) -> bool:
        """Whether a round starts now (then it runs until :meth:`finish`)."""
        due = self.due()
        if self.running or due is None or now < due:
            return False
        self.running, self.asked, self.last_start = True, False, now
        if self.interval > 0:
            self.next_clock = now + self.interval
        return True

    def finish(self, now: float, work_waiting: bool) -> None:
        """The round ended; ``work_waiting``: after it, tasks were queued somewhere (or
        the round failed and nobody knows)."""
        self.running = False
        self.work_waiting = work_waiting
