"""Cheap node daemons: the supervisor forks them from itself, with everything imported.

Theory of operation (README.md, "Lifetimes"; daemon/lifecycle.py):

- A fresh interpreter per node costs about 140 ms of CPU (imports of pyzmq, msgpack,
  psutil, the topology parser and the node's modules, then parsing the topology file)
  and 13-14 MB of memory of its own. The supervisor has done all of that already, so it
  is the zygote: :func:`spawn` forks it, and the child runs the node
  (:func:`daemon.node.serve`) on the supervisor's parsed topology. What the child
  shares with the supervisor stays shared, copy-on-write; ``gc.freeze()`` before each
  fork keeps the child's garbage collector from touching (and so copying) the
  supervisor's objects.
- Everything a node imports is imported here, before any fork: a module imported in
  the child costs each of a thousand nodes its CPU and its memory again (pyzmq's ZAP
  authenticator brings asyncio and ssl: 4 MB of unique memory per node, BENCHMARKS.md).
- Each node is still its own process with its own ZeroMQ context, created after the
  fork (the supervisor makes no context before it starts its nodes; one made later, for
  balancing, is never touched by a child, which only ever leaves by ``os._exit``).
- The child is set up like a node started by ``subprocess``: its own process group;
  stdin from /dev/null, stdout and stderr to its log; every inherited descriptor closed
  except the write end of its notify pipe; default signal dispositions and no wakeup
  fd; ``ECHOFINN_PARENT_PID`` naming the supervisor, then ``die_with_parent`` (the
  supervisor forks from its main thread, which the death signal follows). Signals are
  blocked across the fork, so that none reaches the child while it still runs the
  supervisor's handlers (whose wakeup fd would tell the supervisor it got the signal).
- Its command line is rewritten in place to ``python -m daemon --node NAME ...`` (the
  argument area that /proc/PID/cmdline shows), so that ``ps`` and the ``--node NAME``
  marker that ``ctl status`` and ``ctl stop`` check (daemon/lifecycle.py ``is_alive``)
  see a node, not a second supervisor.
- A forked node runs on the state the cluster was started with, not on what the run
  directory holds by then: the supervisor's parsed topology and its copy of the public
  keys (daemon/security.py ``preload``); its own key pair it reads from the run
  directory, where the supervisor has written the cluster's keys back before any restart
  if they were removed or replaced (daemon/cluster/runfolder.py ``restore_keys``).
- The child leaves by ``os._exit`` with :func:`daemon.node.serve`'s status (70 for an
  exception it did not expect, after printing it to the log): it never runs the
  supervisor's ``finally`` blocks, atexit handlers or interpreter shutdown. The
  supervisor reaps it on SIGCHLD as it reaps any child; :class:`Forked` is the part of
  ``subprocess.Popen`` the supervisor uses.

``ECHOFINN_SPAWN=exec`` makes the supervisor start nodes as fresh interpreters instead,
as before (for comparison: ``ctl bench scale --spawn exec``).
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import subprocess
import sys
import time
import traceback

import zmq.auth.thread  # noqa: F401 — the nodes' ZAP handler (daemon/security.py), with asyncio

# imported here, once, for every node forked later (module text)
import daemon.burner
import daemon.journal  # and sqlite3
import daemon.node
from daemon.lifecycle import PARENT_PID_ENV, die_with_parent

SPAWN_ENV = "ECHOFINN_SPAWN"  # "exec": fresh interpreters; anything else: fork
CHILD_SIGNALS = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
UNEXPECTED = 70  # EX_SOFTWARE: the node raised something serve() does not handle
ALL_SIGNALS = signal.valid_signals()


def enabled() -> bool:
    return os.environ.get(SPAWN_ENV, "fork") != "exec"


class Forked:
    """A forked node as the supervisor sees it: the subset of ``subprocess.Popen`` it uses."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Reap the child; ``subprocess.TimeoutExpired`` after ``timeout`` seconds.
        ``ChildProcessError`` if someone else reaped it (the supervisor's SIGCHLD loop)."""
        if self.returncode is not None:
            return self.returncode
        if timeout is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while self.poll() is None:  # as Popen.wait(timeout) does: no blocking wait with a timeout
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(f"node pid {self.pid}", timeout)
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.05)
        return self.returncode


def spawn(topology, names: list[str], notify_fd: int, log_path, run_dir=None) -> Forked:
    """Fork the process of nodes ``names`` of ``topology`` (one, or several served by one
    process: daemon/node.py NodeHost); it writes its ready line on ``notify_fd``
    (the caller closes its own copy) and its output to ``log_path``. Call it from the
    main thread. Raises OSError if the log cannot be opened or the fork fails."""
    parent = os.getpid()
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        daemon.node.warm(topology)  # tables every node reads, made once, shared
        gc.freeze()  # the child's collector then leaves the supervisor's objects alone
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, ALL_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                _child(topology, names, notify_fd, log_fd, parent, blocked, str(log_path), run_dir)  # never returns
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    finally:
        os.close(log_fd)
    return Forked(pid)


def _child(topology, names: list[str], notify_fd: int, log_fd: int, parent: int, mask, log_path: str,
           run_dir) -> None:
    code = UNEXPECTED
    try:
        signal.set_wakeup_fd(-1)
        for signum in CHILD_SIGNALS:
            signal.signal(signum, signal.SIG_DFL)
        os.setpgid(0, 0)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        _close_inherited(keep={0, 1, 2, notify_fd})
        os.environ[PARENT_PID_ENV] = str(parent)
        set_cmdline([sys.executable, "-m", "daemon", *daemon.node.node_args(names),
                     "--topology", str(topology.path), "--log", log_path])
        ppid = die_with_parent()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        code = daemon.node.serve(topology, names, notify_fd, ppid, run_dir)
    except BaseException:  # noqa: BLE001 — whatever happens, this process must not return
        try:
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001
                pass
        os._exit(code)


def _close_inherited(keep: set[int]) -> None:
    """Close every descriptor but ``keep``: the supervisor's other notify pipes, its
    wakeup pipe, its log. ``os.closerange`` between the kept ones: one close_range(2)
    system call per gap on Linux, where a close per descriptor cost each of a thousand
    nodes a thousand system calls."""
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = max(low, fd + 1)
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def set_cmdline(args: list[str]) -> bool:
    """Rewrite this process's argument area (what /proc/self/cmdline and ``ps`` show)
    to ``args``, cut to the area's size (Linux: its bounds are fields 48-49 of
    /proc/self/stat, proc(5)). False where that is not possible."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rindex(b")") + 2 :].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48, 49)
    except (OSError, ValueError, IndexError):
        return False
    size = end - start
    if size <= 1:
        return False
    text = b"\0".join(a.encode() for a in args)[: size - 1]
    ctypes.memmove(start, text + b"\0" * (size - len(text)), size)
    return True
