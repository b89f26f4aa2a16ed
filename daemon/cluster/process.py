"""One supervised process and its restart policy: a small state machine.

A supervised process is one node daemon process, which serves one node or several
(``[cluster] nodes_per_process``, daemon/node.py ``NodeHost``), followed across its
restarts. Its states (``state`` of each node in ``cluster.json``)::

    STARTING --ready--> RUNNING --crashed--> BACKOFF --spawned--> STARTING
        |                  |
        +--crashed---------|-------------> BACKOFF
        +--gave up---------+-------------> FATAL    (restart = "never", the
                                                     restart_max_crashes-th crash within
                                                     restart_window, or the cluster's
                                                     own start failed)
    STARTING, RUNNING, BACKOFF, STOPPING, STOPPED --stop--> STOPPED;  FATAL --stop--> FATAL

    operator (``ctl stop|start|restart NODE``, while the cluster runs):
    STARTING, RUNNING --operator stop--> STOPPING --exited--> STOPPED
    BACKOFF --operator stop--> STOPPED            (its restart is called off)
    STOPPED, FATAL, BACKOFF --operator start--> STARTING --spawned--> STARTING
    (a start of a STARTING/RUNNING/STOPPING process, a stop of a STOPPING/STOPPED/FATAL
    one, changes nothing: a repeated request is no error)

STOPPED while the cluster runs means stopped by the operator: the restart policy never
restarts a STOPPED process (nothing sets ``restart_at``); only ``operator start`` leaves it.
A restart is ``operator stop`` with ``start_after_stop`` set: the supervisor fires
``operator start`` once the old process is reaped. ``operator start`` forgets the
crashes counted so far (a FATAL process started by hand gets its full allowance again,
as supervisord's ``start`` does).

Every move is one row of :data:`TRANSITIONS`, and :meth:`SupervisedProcess.fire` is the
only place a state changes: an event a state has no row for raises
:class:`IllegalTransition`, naming the process, the state and the event. The supervisor
(daemon/cluster/supervisor.py) decides *when* an event happens — a ready line read, a
child reaped, a timer due, a stop signal — and this module decides *what it means*
(the models: supervisord's ``process.py`` states, Circus's split of a watcher from its
processes).

The restart policy (``[cluster]`` keys ``restart``, ``restart_backoff_max``,
``restart_max_crashes``, ``restart_window``: daemon/topology.py) is
:class:`RestartPolicy`: a process that exits without being asked, or does not say
ready within its deadline, is a crash; it waits in BACKOFF 0.1 s, the delay doubling
with each crash within the window up to ``restart_backoff_max``; the
``restart_max_crashes``-th crash within ``restart_window`` seconds (or any crash under
``restart = "never"``) leaves it FATAL.

``alive`` stays true until the process is reaped; ``exit_status`` is set then.
``restarts`` counts the starts after the first, ``last_exit`` says how the previous
process ended, ``since`` (unix time) when the current state began. No I/O here but the
clock: the pipes, signals and forks are the supervisor's.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

FIRST_BACKOFF = 0.1  # seconds before the first restart; doubles per crash in the window


class ProcessState(StrEnum):
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    FATAL = "FATAL"
    STOPPING = "STOPPING"  # the operator stopped it: SIGTERM sent, not reaped yet
    STOPPED = "STOPPED"


class Event(StrEnum):
    SPAWNED = "spawned"  # a new process was started (the first one, or a restart)
    READY = "ready"  # its ready line arrived, with an endpoint per node
    CRASHED = "crashed"  # it exited or failed to start, and the policy allows a restart
    GAVE_UP = "gave up"  # the same, and the policy allows none (or the cluster's start failed)
    STOP = "stop"  # the supervisor stops
    OPERATOR_STOP = "operator stop"  # `ctl stop NODE` or `ctl restart NODE`
    OPERATOR_START = "operator start"  # `ctl start NODE`, or a restart once the old process is reaped
    EXITED = "exited"  # a process the operator stopped was reaped


S, E = ProcessState, Event

# (state, event) -> next state. Anything not here is an IllegalTransition.
TRANSITIONS: dict[tuple[ProcessState, Event], ProcessState] = {
    (S.STARTING, E.SPAWNED): S.STARTING,  # the first start: a new process begins in STARTING
    (S.BACKOFF, E.SPAWNED): S.STARTING,  # a restart, once its delay is over
    (S.STARTING, E.READY): S.RUNNING,
    (S.STARTING, E.CRASHED): S.BACKOFF,  # exited before ready, not ready in time, no fork
    (S.RUNNING, E.CRASHED): S.BACKOFF,
    (S.STARTING, E.GAVE_UP): S.FATAL,
    (S.RUNNING, E.GAVE_UP): S.FATAL,
    (S.STARTING, E.STOP): S.STOPPED,
    (S.RUNNING, E.STOP): S.STOPPED,
    (S.BACKOFF, E.STOP): S.STOPPED,  # its restart is called off
    (S.STOPPED, E.STOP): S.STOPPED,
    (S.FATAL, E.STOP): S.FATAL,  # a FATAL process stays FATAL in the record: that is what happened
    (S.STOPPING, E.STOP): S.STOPPED,  # the supervisor's stop reaps it with the others
    # the operator, one process at a time
    (S.STARTING, E.OPERATOR_STOP): S.STOPPING,
    (S.RUNNING, E.OPERATOR_STOP): S.STOPPING,
    (S.BACKOFF, E.OPERATOR_STOP): S.STOPPED,  # no process to signal: its restart is called off
    (S.STOPPING, E.OPERATOR_STOP): S.STOPPING,  # asked again: nothing new
    (S.STOPPED, E.OPERATOR_STOP): S.STOPPED,
    (S.FATAL, E.OPERATOR_STOP): S.FATAL,  # not running already; FATAL says what happened
    (S.STOPPING, E.EXITED): S.STOPPED,
    (S.STOPPED, E.OPERATOR_START): S.STARTING,
    (S.FATAL, E.OPERATOR_START): S.STARTING,
    (S.BACKOFF, E.OPERATOR_START): S.STARTING,  # now, not after its delay
    (S.STARTING, E.OPERATOR_START): S.STARTING,  # already starting: nothing new
    (S.RUNNING, E.OPERATOR_START): S.RUNNING,  # already running: nothing new
    (S.STOPPING, E.OPERATOR_START): S.STOPPING,  # started once reaped (start_after_stop)
}


class IllegalTransition(RuntimeError):
    """An event the process's state has no transition for: a bug in the supervisor."""

    def __init__(self, process: str, state: ProcessState, event: Event):
        super().__init__(f"process of node {process}: no transition from {state.value} on event {event.value!r}")
        self.process, self.state, self.event = process, state, event


@dataclass(frozen=True)
class RestartPolicy:
    """What a crash leads to: ``[cluster]`` ``restart`` and its three limits."""

    restart: str  # "on-failure" or "never"
    backoff_max: float
    max_crashes: int
    window: float
    first_backoff: float = FIRST_BACKOFF

    @classmethod
    def of(cls, cluster) -> RestartPolicy:
        """The policy of a topology's ``[cluster]`` table (daemon/topology.py ``Cluster``)."""
        return cls(cluster.restart, cluster.restart_backoff_max, cluster.restart_max_crashes, cluster.restart_window)

    def delay(self, crashes: int) -> float | None:
        """Seconds in BACKOFF after the ``crashes``-th crash within the window; None: FATAL."""
        if self.restart == "never" or crashes >= self.max_crashes:
            return None
        return min(self.first_backoff * 2 ** (crashes - 1), self.backoff_max)


def describe_exit(code: int | None) -> str:
    """``exit status 3`` or ``killed by SIGKILL``, from a ``waitstatus_to_exitcode`` value."""
    if code is None:
        return "running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class SupervisedProcess:
    """A node daemon process as the supervisor sees it, across its restarts: the nodes it
    serves, the state machine above, and the pid, pipe and timers of the current process."""

    def __init__(self, endpoints: dict[str, str], log: Path, operator_endpoints: dict[str, str] | None = None):
        # node -> endpoint, for each node this process serves (a NodeHost: several), in
        # order: the topology's until the ready line says where each is bound
        self.endpoints = dict(endpoints)
        # node -> its operator socket's endpoint (the topology's: daemon/topology.py)
        self.operator_endpoints = dict(operator_endpoints or {})
        self.names = tuple(self.endpoints)  # the nodes it serves
        self.name = self.names[0]  # the node it goes by in messages; its log is NAME.log
        self.log = log
        self.state = ProcessState.STARTING
        self.since = time.time()
        self.popen: subprocess.Popen | None = None
        self.pid: int | None = None
        self.create_time: float | None = None
        self.exit_status: int | None = None
        self.error: str | None = None
        self.alive = False
        self.notify: int | None = None  # read end of the notify pipe, while starting
        self.said = b""
        self.restarts = 0
        self.last_exit: str | None = None
        self.crashes: deque[float] = deque()  # monotonic times of recent crashes
        self.restart_at: float | None = None  # monotonic, while in BACKOFF
        self.ready_by: float | None = None  # monotonic deadline, while STARTING
        self.stop_by: float | None = None  # monotonic: SIGKILL if not reaped by then, while STOPPING
        self.start_after_stop = False  # a restart: start again once reaped

    def fire(self, event: Event) -> ProcessState:
        """Take ``event``: the one place the state changes (:data:`TRANSITIONS`)."""
        try:
            state = TRANSITIONS[self.state, event]
        except KeyError:
            raise IllegalTransition(self.name, self.state, event) from None
        if state != self.state:
            self.state, self.since = state, time.time()
        return state

    # -- the events ---------------------------------------------------------------------

    def spawned(self, ready_by: float | None = None) -> None:
        """A new process is about to start: forget the previous one's words."""
        self.fire(Event.SPAWNED)
        self.said, self.error, self.exit_status = b"", None, None
        self.restart_at, self.ready_by = None, ready_by

    def heard(self, line: str) -> str:
        """Take the process's one notify line (``ready PID ENDPOINT...``, an endpoint per
        node it serves); returns the progress lines to pass on (one per node)."""
        word, _, rest = line.partition(" ")
        if word == "ready":
            pid, *endpoints = rest.split(" ")
            if pid == str(self.pid) and len(endpoints) == len(self.names) and all(endpoints):
                self.ready_by = None
                self.endpoints = dict(zip(self.names, endpoints))
                self.fire(Event.READY)
                return "\n".join(f"ready {name} {self.pid} {endpoint}" for name, endpoint in self.endpoints.items())
            return self.fail(f"node {self.name}: bad ready line {line!r} (pid {self.pid}); see {self.log}")
        if word == "error" and rest:
            # The node's message names the node and the port; keep it as it is.
            return self.fail(rest if self.name in rest else f"node {self.name}: {rest}")
        return self.fail(f"node {self.name}: unexpected line {line!r} on its notify pipe; see {self.log}")

    def fail(self, error: str) -> str:
        """The process cannot start: at the cluster's start that fails the start (the
        supervisor then calls :meth:`gave_up`); later it is a crash, counted once it is
        reaped. Returns the progress line."""
        self.error = error
        return f"error {error}"

    def reaped(self, code: int) -> None:
        self.alive, self.exit_status = False, code
        self.last_exit = describe_exit(code) + (f" ({self.error})" if self.error else "")
        if self.popen is not None:
            self.popen.returncode = code  # reaped here: Popen must not wait for it again

    def crashed(self, now: float, policy: RestartPolicy) -> float | None:
        """It exited without being asked, or a start failed: count the crash within the
        policy's window, then BACKOFF (returns the delay; ``restart_at`` is set) or FATAL
        (returns None)."""
        self.ready_by = None
        self.crashes.append(now)
        while self.crashes and self.crashes[0] < now - policy.window:
            self.crashes.popleft()
        delay = policy.delay(len(self.crashes))
        if delay is None:
            self.fire(Event.GAVE_UP)
        else:
            self.restart_at = now + delay
            self.fire(Event.CRASHED)
        return delay

    def gave_up(self) -> None:
        """The cluster's start failed with this process: FATAL, never restarted."""
        self.fire(Event.GAVE_UP)

    def stopped(self) -> None:
        """The supervisor stops: no restart is due any more; STOPPED unless FATAL."""
        self.restart_at = self.ready_by = self.stop_by = None
        self.start_after_stop = False
        self.fire(Event.STOP)

    def operator_stop(self, now: float, grace: float) -> bool:
        """``ctl stop``/``restart``: STOPPING (True: signal it now, SIGKILL at ``stop_by``)
        or, with no live process, STOPPED or FATAL at once (False)."""
        was = self.state
        state = self.fire(Event.OPERATOR_STOP)
        self.restart_at = self.ready_by = None
        if state == ProcessState.STOPPING and was != ProcessState.STOPPING:
            self.stop_by = now + grace
            return True
        return False

    def exited(self) -> None:
        """The process the operator stopped was reaped: STOPPED, not a crash."""
        self.stop_by = None
        self.fire(Event.EXITED)

    def operator_start(self) -> bool:
        """``ctl start``, or a restart's second half: True if a process is to be spawned
        now (STARTING from STOPPED, FATAL or BACKOFF); False when it is starting or running
        already, or is still stopping (then ``start_after_stop`` starts it once reaped)."""
        was = self.state
        self.fire(Event.OPERATOR_START)
        if was == ProcessState.STOPPING:
            self.start_after_stop = True
            return False
        if was in (ProcessState.STARTING, ProcessState.RUNNING):
            return False
        self.crashes.clear()
        self.restart_at, self.start_after_stop = None, False
        return True

    @property
    def endpoint(self) -> str:
        """Where the first node this process serves is bound."""
        return self.endpoints[self.name]
