"""Process lifetimes: a child dies with its parent, and a pid is checked before it is trusted.

Theory of operation (ARCHITECTURE.md, "Processes": lifetimes nest, no process outlives the one above it):

- ``die_with_parent`` asks Linux to SIGKILL the calling process when its parent dies
  (``prctl(PR_SET_PDEATHSIG, SIGKILL)``, prctl(2)). The request only covers a parent that
  dies *after* the call, so the child then compares its parent with the one it expects:
  if the parent already died, the child was re-parented and exits at once. The expected
  parent comes from ``ECHOFINN_PARENT_PID``, which every spawner of this project sets
  (see :func:`child_env`); without it, the parent seen just before the prctl call.
- The death signal is tied to the parent *thread* that forked the child (prctl(2),
  "the parent thread"), so spawners here fork from their main thread, which lives as long
  as the process.
- ``parent_alive`` is the fallback a daemon's loop calls about once a second: a process
  whose parent died is re-parented (to init or the nearest subreaper), so its ppid
  changes. On systems without prctl it is the only mechanism.
- ``become_subreaper`` (PR_SET_CHILD_SUBREAPER) makes orphaned descendants — a burner
  whose node was SIGKILLed — the caller's children, so the supervisor reaps them instead
  of leaving the job to whatever init the machine has.
- pids get reused: ``is_alive`` trusts a pid only if the process exists, is not a zombie,
  and has the recorded start time (psutil's ``create_time``) and command-line marker.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

import psutil

PARENT_PID_ENV = "ECHOFINN_PARENT_PID"

# <linux/prctl.h>
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

# psutil computes create_time from the boot time and the start tick of the process; two
# readings of one process agree far more closely than this.
CREATE_TIME_TOLERANCE = 0.05


def _prctl(option: int, arg: int) -> bool:
    """Call prctl(2); False where there is no prctl (not Linux) or the call failed."""
    if not sys.platform.startswith("linux"):
        return False
    # CDLL(None): the symbols already loaded into this process, libc's prctl among them
    # (ctypes.util.find_library would start a subprocess to look libc up).
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(option, arg, 0, 0, 0) == 0


def die_with_parent() -> int:
    """Arrange to be SIGKILLed when the parent dies; exit at once if it already has.

    Call it first thing in a child process. Returns the parent's pid, to pass to
    :func:`parent_alive` later.
    """
    seen = os.getppid()
    expected = int(os.environ.get(PARENT_PID_ENV) or seen)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != expected:
        # The parent died before the prctl call could cover it: nobody will ever stop us.
        os._exit(1)
    return expected


def parent_alive(ppid: int) -> bool:
    """True while the process that started us is still our parent."""
    return os.getppid() == ppid


def become_subreaper() -> bool:
    """Adopt orphaned descendants (they become our children, to reap). False if unsupported."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child this process starts: names us as its expected parent
    (for :func:`die_with_parent`) and keeps this source tree importable by ``-m``."""
    env = dict(os.environ if env is None else env)
    env[PARENT_PID_ENV] = str(os.getpid())
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([root, *paths])
    return env


def create_time(pid: int) -> float | None:
    """The start time of process ``pid`` (psutil's clock), or None if there is none."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def is_alive(pid: int | None, started: float | None = None, marker: tuple[str, ...] = ()) -> bool:
    """True if ``pid`` is a live process (not a zombie) and really the one we mean.

    ``started`` is its recorded ``create_time``; ``marker`` are strings its command line
    must contain, in order, as separate arguments (e.g. ``("--node", "root")``). Either
    check is skipped when not given.
    """
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started is not None and abs(proc.create_time() - started) > CREATE_TIME_TOLERANCE:
            return False
        return not marker or _contains(proc.cmdline(), marker)
    except psutil.Error:  # gone, or not ours to inspect
        return False


def _contains(args: list[str], marker: tuple[str, ...]) -> bool:
    n = len(marker)
    return any(tuple(args[i : i + n]) == marker for i in range(len(args) - n + 1))
