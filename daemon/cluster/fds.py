"""What the supervisor's one ``poll`` loop waits on: descriptors, and signals as bytes.

- Signals are ordinary events (as in Circus): the handlers do nothing in Python, and
  ``signal.set_wakeup_fd`` turns each signal into a byte on a pipe (:class:`SignalPipe`)
  that the loop reads beside the notify pipes of the starting processes.
- :func:`readable_fds` is ``select.select``'s reading half over poll(2), which has no
  FD_SETSIZE limit: a supervisor of more than a thousand nodes holds more than 1,024
  descriptors while they start, and select refuses any numbered 1,024 or more.
- :func:`raise_open_files_limit` lifts the soft limit on open files for as many nodes, and
  :func:`why_not` says how to lift it further when a start runs out.
"""

from __future__ import annotations

import errno
import math
import os
import resource
import select
import signal
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
CONTROL_SIGNAL = signal.SIGUSR1  # an operator's request waits in the run directory (daemon/cluster/control.py)


def readable_fds(fds: list[int], timeout: float | None) -> list[int]:
    """The descriptors of ``fds`` ready to read (or at end of file) within ``timeout``
    seconds."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    ms = None if timeout is None else math.ceil(max(0.0, timeout) * 1000)
    return [fd for fd, _ in poller.poll(ms)]


def raise_open_files_limit(nodes: int) -> None:
    """Lift the soft limit on open files (up to the hard one) to what ``nodes`` nodes
    need here: a notify pipe per starting node, and the balancer's socket and connection
    per node. The common soft limit, 1,024, stops a supervisor short of 1,000 nodes."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4 * nodes + 64
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))


def why_not(exc: OSError) -> str:
    """An OSError of starting a node, with the way out when it is the open-files limit."""
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return (
            f"{exc.strerror} (this process may open {soft}, at most {hard}: a cluster needs about four "
            "per node; `ulimit -n` raises the limit)"
        )
    return str(exc)


class SignalPipe:
    """SIGCHLD, SIGUSR1 (an operator's request) and the stop signals, each a byte on a
    pipe while caught. Use it from the main thread (Python runs signal handlers there)."""

    def __init__(self) -> None:
        self.fd = -1  # the read end, for the loop's poll, once caught
        self._write = -1
        self._old_handlers: dict[int, Any] = {}  # what signal.signal returned: a handler, SIG_DFL...

    def catch(self) -> None:
        self.fd, self._write = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._write, False)
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for signum in (signal.SIGCHLD, CONTROL_SIGNAL, *STOP_SIGNALS):
            self._old_handlers[signum] = signal.signal(signum, _note_signal)

    def release(self) -> None:
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(-1)
        os.close(self.fd)
        os.close(self._write)

    def take(self) -> list[int]:
        """The signals that arrived since the last call, in order (empty if none)."""
        try:
            return list(os.read(self.fd, 512))
        except BlockingIOError:
            return []


def _note_signal(signum, frame) -> None:
    """Nothing to do here: set_wakeup_fd has already written the signal's number."""
