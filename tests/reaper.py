"""The test process as the reaper of the orphans its tests leave: ``start()`` makes it a
*child subreaper* (prctl(2) ``PR_SET_CHILD_SUBREAPER``) and reaps, on a thread, every
child that exits and that it did not start itself.

Why: ``ctl start`` starts the supervisor in a session of its own and exits, so the
supervisor is an orphan; when it exits, its zombie waits for whoever adopted it to reap
it, and ``ctl stop`` and the e2e teardown (tests/e2e/conftest.py) wait for that, since a
zombie is still a process. Adopted by init, that wait is init's: on the machines this
suite runs on (a VM whose init is ``process_api``) init reaps an orphan's zombie about
1.6 s after it exits, so every cluster stopped waited 1.6 s for nothing. Adopted by the
test process, which reaps at once, the same checks run on the same processes: a process
is still "gone" only once it exited and was reaped, and a zombie whose parent is alive
(a node its supervisor did not reap) is still a zombie left behind.

What is not reaped here: the children this process starts itself (``subprocess.Popen``,
``os.fork``, ``os.forkpty``, ``os.posix_spawn``), known by pid and start time, which
their starter waits for. Started by the first e2e test and looking only while e2e tests
run (tests/conftest.py): the others start no process, and the thread's looks would take
the interpreter's lock from their CPU-bound work.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
import time

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
EVERY = 0.01  # seconds between two looks for an exited child
SCAN_EVERY = 0.2  # ... when each look reads /proc

_lock = threading.Lock()  # held while this process starts a child and while the reaper reaps
_ours: set[tuple[int, int | None]] = set()  # (pid, start time) of the children started here
_started = False
_libc = None  # libc, once start() made this process a subreaper
_active = threading.Event()  # set while e2e tests run: the reaper looks only then


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def _start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None  # field 22 of proc(5)


def _remember(pid: int) -> None:
    if pid > 0:
        _ours.add((pid, _start_time(pid)))


def _zombie_children() -> list[int]:
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and fields[0] == "Z" and fields[1] == me:
                found.append(int(entry))
    return found


def _reap_adopted() -> float:
    """Reap every exited child this process did not start; return how long to wait
    before the next look (longer when an exited child of its own, not yet waited for
    by its starter, makes each look read /proc)."""
    try:
        first = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return EVERY
    if first is None:
        return EVERY
    with _lock:
        scan = (first.si_pid, _start_time(first.si_pid)) in _ours
        candidates = _zombie_children() if scan else [first.si_pid]
        for pid in candidates:
            if (pid, _start_time(pid)) in _ours:
                continue  # its starter waits for it
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
    return SCAN_EVERY if scan else 0.0


def _loop() -> None:
    while True:
        _active.wait()
        time.sleep(_reap_adopted())


def active(on: bool) -> None:
    """Be the orphans' reaper and look for them (while e2e tests run), or neither (while
    the others run: they start no process, and a look costs them the interpreter's lock).
    Off, the process is no subreaper either: an orphan made then (by a test this file's
    conftest does not see, such as examples/'s) goes to init, which reaps it, rather than
    to a process that no longer looks; the zombies adopted so far are reaped first."""
    if not _started:
        return
    if on:
        _subreaper(True)
        _active.set()
    else:
        _active.clear()
        with _lock:
            for pid in _zombie_children():
                if (pid, _start_time(pid)) not in _ours:
                    try:
                        os.waitpid(pid, os.WNOHANG)
                    except ChildProcessError:
                        pass
        _subreaper(False)


def _subreaper(on: bool) -> None:
    if _libc is not None:
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0)


def _wrap_spawners() -> None:
    execute_child = subprocess.Popen._execute_child

    def _execute_child(self, *args, **kwargs):
        with _lock:
            execute_child(self, *args, **kwargs)
            _remember(self.pid)

    subprocess.Popen._execute_child = _execute_child

    fork = os.fork

    def _fork():
        with _lock:  # in the child, leaving the block releases its copy of the lock
            pid = fork()
            _remember(pid)
            return pid

    os.fork = _fork

    if hasattr(os, "forkpty"):
        forkpty = os.forkpty

        def _forkpty():
            with _lock:
                pid, fd = forkpty()
                _remember(pid)
                return pid, fd

        os.forkpty = _forkpty

    if hasattr(os, "posix_spawn"):
        for name in ("posix_spawn", "posix_spawnp"):
            spawn = getattr(os, name)

            def _spawn(*args, _spawn=spawn, **kwargs):
                with _lock:
                    pid = _spawn(*args, **kwargs)
                    _remember(pid)
                    return pid

            setattr(os, name, _spawn)


def start() -> bool:
    """Make this process the reaper of its orphaned descendants (once); False where
    prctl is missing (not Linux), and nothing changes then."""
    global _started
    if _started:
        return True
    global _libc
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    _libc = libc
    _wrap_spawners()
    threading.Thread(target=_loop, name="orphan reaper", daemon=True).start()
    _started = True
    return True
