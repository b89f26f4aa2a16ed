"""Balancing rounds for the supervisor, on a thread of their own.

Every ``[cluster] rebalance_interval`` seconds the supervisor (daemon/cluster/supervisor.py)
asks for a round: one echo wave for the queues, a plan (daemon/core/plan.py), the moves —
all through :class:`daemon.operator.Operator`, like ``ctl rebalance``. A round waits on
nodes (a silent one takes its deadlines), so it runs here and the supervisor's loop never
waits on a node. At rank 0 only under an MPI launch (daemon/mpi.py).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from daemon.errors import UserError
from daemon.topology import Topology

BALANCING_TIMEOUT = 2.0  # deadline of one operator call during a balancing round


class Balancer:
    """Balancing rounds (echo, plan, move through :class:`daemon.operator.Operator`) on a
    thread of their own, so the supervisor's loop never waits on a node: a round against
    a silent node takes its deadlines. One operator, made and closed on that thread,
    serves every round (its connections stay open). A round asked for while one runs is
    merged into it."""

    def __init__(self, topology: Topology, log: logging.Logger, run_dir: Path | None = None):
        self.topology = topology
        self.log = log
        self.run_dir = run_dir  # where the operator key is (daemon/security.py)
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="balancer", daemon=True)

    def kick(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()
        self._wake.set()

    def close(self, wait: float) -> None:
        """Stop after the round in progress (its calls have deadlines); wait at most ``wait``."""
        self._closing = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(wait)

    def _run(self) -> None:
        from daemon.operator import Operator

        operator = None
        try:
            while not self._closing:
                self._wake.wait()
                if self._closing:
                    return
                try:
                    if operator is None:
                        operator = Operator(self.topology, timeout=BALANCING_TIMEOUT, run_dir=self.run_dir)
                    self._round(operator)
                finally:
                    self._wake.clear()
        finally:
            if operator is not None:
                operator.close()

    def _round(self, operator) -> None:
        try:
            report = operator.rebalance()
        except UserError as exc:  # a wave timed out or a node refused: try next round
            self.log.warning("balancing round failed: %s", exc)
            return
        except Exception:  # a broken round must not take the cluster down
            self.log.exception("balancing round crashed")
            return
        self.log.info(
            "balancing round: %d tasks moved in %d moves, imbalance %s -> %s, %.0f ms",
            report.get("moved", 0),
            len(report.get("moves", ())),
            report.get("imbalance_before"),
            report.get("imbalance_after"),
            report.get("elapsed_ms", 0.0),
        )
