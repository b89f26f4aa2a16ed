"""The thread that talks to the cluster for ``ctl top``.

An echo wave against a silent node takes the operator's whole timeout to fail, and a
balancing round is two waves plus moves: none of that may block a key. So one thread
owns the :class:`daemon.operator.Operator` (which is not thread-safe, and is only ever
touched by that thread: created, used and closed there) and runs :class:`Command`\\ s
from a queue; every answer, or error, goes back on a second queue as an
:class:`Outcome` that the key loop drains between keys.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ctl.top.keys import Command

# What each command asks of the operator.
CALLS: dict[str, Callable[[Any, Command], dict]] = {
    "echo": lambda op, c: op.echo(),
    "rebalance": lambda op, c: op.rebalance(),
    "finn": lambda op, c: op.finn(tasks=c.tasks),
    "submit": lambda op, c: op.submit(c.node, c.tasks),
}


@dataclass(frozen=True)
class Outcome:
    """The answer to one command: a result, or the exception it raised; when it came."""

    command: Command
    result: dict | None
    error: BaseException | None
    at: float  # unix time


class OperatorWorker:
    """Runs commands against the cluster on its own thread.

    ``make_operator`` is called on that thread; if it raises, the error comes back as
    the Outcome of a ``Command("start")`` and the thread ends.
    """

    def __init__(self, make_operator: Callable[[], Any]):
        self._make_operator = make_operator
        self._requests: queue.Queue = queue.Queue()
        self._results: queue.Queue = queue.Queue()
        self._in_flight: dict[str, int] = {}  # touched by the key loop's thread only
        self._thread = threading.Thread(target=self._run, name="ctl-top-operator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, command: Command) -> None:
        self._in_flight[command.kind] = self._in_flight.get(command.kind, 0) + 1
        self._requests.put(command)

    def busy(self, kind: str) -> bool:
        """Whether a command of this kind is queued or running (so waves do not pile up)."""
        return self._in_flight.get(kind, 0) > 0

    def drain(self) -> list[Outcome]:
        """Every outcome that has arrived, without waiting."""
        out: list[Outcome] = []
        while True:
            try:
                outcome = self._results.get_nowait()
            except queue.Empty:
                return out
            kind = outcome.command.kind
            if self._in_flight.get(kind):
                self._in_flight[kind] -= 1
            out.append(outcome)

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the thread to close the operator and end; wait at most ``timeout``.

        A call stuck on a silent cluster may outlive the wait; the thread is a daemon, so
        it does not keep the process alive."""
        self._requests.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            operator = self._make_operator()
        except Exception as exc:  # noqa: BLE001  reported to the view, which exits with the message
            self._results.put(Outcome(Command("start"), None, exc, time.time()))
            return
        try:
            while True:
                command = self._requests.get()
                if command is None:
                    return
                try:
                    result = CALLS[command.kind](operator, command)
                except Exception as exc:  # noqa: BLE001 - any failure is shown, the view stays up
                    self._results.put(Outcome(command, None, exc, time.time()))
                else:
                    self._results.put(Outcome(command, result, None, time.time()))
        finally:
            operator.close()
