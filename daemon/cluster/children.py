"""The supervisor's children, by pid: reaped when they exit, signalled only while unreaped.

A pid is trusted only while its process is an unreaped child of ours: until it is
reaped, the kernel cannot give its pid to another process, so a signal sent by that pid
reaches that process and no other (nothing is ever killed by name). :class:`Children`
holds the node daemon processes by pid until they are reaped; the supervisor
(daemon/cluster/supervisor.py) reaps on SIGCHLD with ``waitpid(-1, WNOHANG)``, never by
polling, and as a *child subreaper* (daemon/lifecycle.py) also reaps the orphans it
adopts: burners whose node was SIGKILLed.

This module only collects exit statuses; what an exit means (a crash, a restart, a stop)
is the supervisor's and the process state machine's (daemon/cluster/process.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import psutil

from daemon.cluster.process import SupervisedProcess


class Children:
    def __init__(self) -> None:
        self.by_pid: dict[int, SupervisedProcess] = {}

    def add(self, process: SupervisedProcess) -> None:
        """A process just started (its ``pid`` set)."""
        assert process.pid is not None
        self.by_pid[process.pid] = process

    def pop(self, pid: int) -> SupervisedProcess | None:
        """The process of a reaped pid, forgotten; None for an adopted orphan."""
        return self.by_pid.pop(pid, None)

    @staticmethod
    def exited() -> Iterator[tuple[int, int]]:
        """(pid, exit code) of every child that has exited, reaping each (on SIGCHLD)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            yield pid, os.waitstatus_to_exitcode(status)

    @staticmethod
    def wait(process: SupervisedProcess, timeout: float | None = None) -> int | None:
        """Block until ``process`` exits and reap it; its exit code, or None if it is still
        running after ``timeout`` seconds, was reaped already, or never started."""
        if process.popen is None:
            return None
        try:
            return process.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        except ChildProcessError:  # reaped already by exited()
            return None

    def adopted(self) -> Iterator[tuple[int, int]]:
        """(pid, exit code) of each adopted orphan, SIGKILLed and reaped. They carry a
        pending SIGKILL from their death signal; make sure, then wait."""
        try:
            children = psutil.Process().children()
        except psutil.Error:
            return
        for child in children:
            if child.pid in self.by_pid:
                continue  # our own process: reaped with the others
            try:
                os.kill(child.pid, signal.SIGKILL)
                _, status = os.waitpid(child.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                continue
            yield child.pid, os.waitstatus_to_exitcode(status)

    @staticmethod
    def signal(processes: list[SupervisedProcess], signum: int) -> None:
        """Send ``signum`` to each of ``processes`` not reaped yet, by pid."""
        for process in processes:
            if not process.alive or process.pid is None:
                continue  # reaped: its pid may name another process by now
            try:
                os.kill(process.pid, signum)  # by pid: it is our unreaped child, so it is ours
            except ProcessLookupError:
                pass
