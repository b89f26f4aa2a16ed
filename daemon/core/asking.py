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
"""

from __future__ import annotations

ASK_GAP = 0.1  # seconds: a node asks its balancer at most this often
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
