"""Balancing rounds for the supervisor, on a thread of their own: on a clock, and at once
when a node asks.

A round is one echo wave for the queues, a plan (daemon/core/plan.py), the moves — all
through :class:`daemon.operator.Operator`, like ``ctl rebalance``. A round waits on nodes
(a silent one takes its deadlines), so it runs here and the supervisor's loop
(daemon/cluster/supervisor.py) never waits on a node. At rank 0 only under an MPI launch
(daemon/mpi.py).

When (ARCHITECTURE.md, "Balancing"): every ``[cluster] rebalance_interval`` seconds, and
as soon as a node asks. A second operator, the *listener*, sends every node
``balance.watch`` (again every :data:`WATCH_RENEW` seconds, for a node restarted since)
and waits on its sockets for the ``balance.wanted`` the nodes send when work lands or a
slot frees (debounced per node). :class:`RoundGate` (daemon/core/asking.py) decides, with
time passed in, when a round starts: never two at once; asks during a round make
exactly one more after it; an ``idle`` ask (a slot freed) counts only if the last round
saw tasks waiting somewhere, so a cluster draining its last tasks is not echoed for
nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from daemon.core.asking import RoundGate
from daemon.errors import UserError
from daemon.topology import Topology

BALANCING_TIMEOUT = 2.0  # deadline of one operator call during a balancing round
WATCH_RENEW = 5.0  # seconds between two balance.watch to every node (a restarted one forgot)
WAKE = 0.1  # the longest the thread waits before it looks at a kick or a close


def work_waiting(report: dict) -> bool:
    """Whether a round's report (``Operator.rebalance``) leaves queued tasks somewhere."""
    return any(n.get("queued", 0) > 0 for n in report["after"]["nodes"])


class Balancer:
    """Balancing rounds (echo, plan, move through :class:`daemon.operator.Operator`) on a
    thread of their own, so the supervisor's loop never waits on a node: a round against
    a silent node takes its deadlines. Two operators, made and closed on that thread:
    one runs every round (its connections stay open), the other listens for the nodes'
    asks."""

    def __init__(
        self, topology: Topology, log: logging.Logger, run_dir: Path | None = None, interval: float | None = None
    ):
        self.topology = topology
        self.log = log
        self.run_dir = run_dir  # where the operator key is (daemon/security.py)
        self.interval = topology.cluster.rebalance_interval if interval is None else interval
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="balancer", daemon=True)
        self.watching = False  # the first balance.watch went out

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def close(self, wait: float) -> None:
        """Stop after the round in progress (its calls have deadlines); wait at most ``wait``."""
        self._closing = True
        if self._thread.is_alive():
            self._thread.join(wait)

    def _run(self) -> None:
        from daemon.operator import Operator

        operator = listener = None
        try:
            operator = Operator(self.topology, timeout=BALANCING_TIMEOUT, run_dir=self.run_dir)
            listener = Operator(self.topology, timeout=BALANCING_TIMEOUT, run_dir=self.run_dir)
            gate = RoundGate(self.interval, time.monotonic())
            next_watch = time.monotonic()
            while not self._closing:
                now = time.monotonic()
                if now >= next_watch:
                    stuck = listener.watch_balance()
                    next_watch = now + WATCH_RENEW
                    if stuck:
                        self.log.warning("balancing: nodes %s take no balance.watch (full queues)", ", ".join(stuck))
                    if not self.watching:
                        self.watching = True
                        self.log.info(
                            "balancing: every %g s and whenever a node asks (%d nodes watched)",
                            self.interval,
                            len(self.topology.names) - len(stuck),
                        )
                asked = gate.asked and (gate.next_clock is None or gate.next_clock > now)
                if gate.start(now):
                    report = self._round(operator, "asked by a node" if asked else "on the clock")
                    # a failed round says nothing of the queues: only new work or the clock
                    # brings the next (a node's idle slot does not, round after round)
                    gate.finish(time.monotonic(), work_waiting(report) if report is not None else False)
                    continue  # asks that came meanwhile are read next, before any wait
                due = gate.due()
                wait = min(WAKE, next_watch - now, *(() if due is None else (due - now,)))
                for msg in listener.balance_wanted(max(0.0, wait)):
                    gate.ask(msg["reason"], time.monotonic())
        except Exception:  # a broken balancer must not take the supervisor down
            self.log.exception("balancer crashed")
        finally:
            for op in (operator, listener):
                if op is not None:
                    op.close()

    def _round(self, operator, why: str) -> dict | None:
        try:
            report = operator.rebalance()
        except UserError as exc:  # a wave timed out or a node refused: try next round
            self.log.warning("balancing round failed: %s", exc)
            return None
        except Exception:  # a broken round must not take the cluster down
            self.log.exception("balancing round crashed")
            return None
        self.log.info(
            "balancing round: %d tasks moved in %d moves, imbalance %s -> %s, %.0f ms, %s",
            report.get("moved", 0),
            len(report.get("moves", ())),
            report.get("imbalance_before"),
            report.get("imbalance_after"),
            report.get("elapsed_ms", 0.0),
            why,
        )
        return report
