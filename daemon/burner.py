"""The burner: real CPU load for a node's running tasks, at the lowest scheduling priority.

Theory of operation (ARCHITECTURE.md, "Tasks and burners"):

- A task holds one CPU slot of its node and burns real CPU for as long as it runs. A
  node owns one burner *process* (``python -m daemon.burner``), started on first need;
  inside it, one *thread* per busy slot. The node says how many slots are busy by writing
  the number as a line on the burner's stdin; it never has to name threads or tasks.
- Burning threads hash a 64 KiB buffer with SHA-256 in a loop. hashlib releases the GIL
  for inputs of 2 KiB and more, so n threads really burn up to n cores.
- Idle threads wait on a condition variable, and the main thread blocks reading stdin:
  an idle burner uses no CPU at all.
- Every thread runs under ``SCHED_IDLE`` (sched(7)): it only gets a core that nothing
  else wants, so forty virtual CPUs on two real cores leave the control plane — node
  loops, waves, ``ctl`` — its latency. On Linux the policy belongs to a thread, so each
  burning thread sets it for itself (new threads would inherit it, but saying so costs
  nothing and survives a change in who starts them).
- The burner dies with its node: ``die_with_parent`` (PDEATHSIG) and, as a second
  route, end of file on stdin, which happens however the node ends. A burner that dies
  under its node is replaced the next time the node asks for its pid (every
  housekeeping round, for the CPU measurement) or changes the number of busy slots.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import subprocess
import sys
import threading

from daemon.lifecycle import child_env, die_with_parent

CHUNK = 64 * 1024  # bytes hashed per step: large enough that hashlib drops the GIL
MAX_SLOTS = 1024  # a sanity bound on one line of input, far above any node's cpus
CLOSE_WAIT = 1.0  # seconds a burner gets to exit at end of input before SIGKILL


class Burner:
    """The node's handle on its burner process. Use it from the node's main thread:
    the burner's death signal follows the thread that started it (see lifecycle)."""

    def __init__(self, node_name: str):
        self.node_name = node_name
        self._proc: subprocess.Popen | None = None
        self._busy = 0

    def set_busy(self, slots: int) -> None:
        """Burn ``slots`` CPU slots from now on (0 = idle); starts the process on first need."""
        slots = max(0, min(int(slots), MAX_SLOTS))
        running = self._proc is not None and self._proc.poll() is None
        if slots == self._busy and (running or slots == 0):
            return
        if not running:
            if slots == 0:
                self._busy = 0
                return
            self._start()
        try:
            self._proc.stdin.write(b"%d\n" % slots)
            self._proc.stdin.flush()
        except BrokenPipeError:
            # The burner died between poll() (or its start) and this write. The slots stay
            # wanted, so the node's next housekeeping round (pids()) or next call starts a
            # new one; forgetting them would leave the tasks burning nothing until their
            # number of busy slots changed (for a long task, its whole run).
            self._log().warning("burner pid %d is gone", self._proc.pid)
        self._busy = slots

    def _log(self) -> logging.Logger:
        """The node's logger (daemon/logs.py), so the burner's death is in the node's log."""
        return logging.getLogger(f"echofinn.node.{self.node_name}")

    def pids(self) -> list[int]:
        """The burner's pid while it runs (for psutil measurement), else nothing.

        A burner that died while slots were busy (killed, out of memory) is replaced
        here first: the node asks on every housekeeping round, so its tasks burn again
        within a round instead of burning nothing until the number of busy slots changes.
        """
        if self._busy and self._proc is not None and self._proc.poll() is not None:
            self._log().warning("burner pid %d died (exit %s) with %d busy slots; starting a new one",
                                self._proc.pid, self._proc.returncode, self._busy)
            self.set_busy(self._busy)
        if self._proc is not None and self._proc.poll() is None:
            return [self._proc.pid]
        return []

    def close(self) -> None:
        """Stop the burner and reap it: end of input, then SIGKILL by pid if it lingers."""
        if self._proc is None:
            return
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self._proc.wait(CLOSE_WAIT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        self._busy = 0

    def _start(self) -> None:
        if self._proc is not None:
            self._reap()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.burner", "--node", self.node_name],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=child_env(),
        )
        self._busy = 0

    def _reap(self) -> None:
        proc, self._proc = self._proc, None
        self._busy = 0
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        proc.kill()
        proc.wait()


# --- the burner process ----------------------------------------------------------------


def lowest_priority() -> None:
    """Put the calling thread under SCHED_IDLE (sched(7)); nice 19 where that is missing."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


class BusySlots:
    """Threads 0..wanted-1 burn; the others wait. Threads are made on first need and kept."""

    def __init__(self) -> None:
        self.wanted = 0
        self._changed = threading.Condition()
        self._threads: list[threading.Thread] = []

    def set(self, wanted: int) -> None:
        with self._changed:
            self.wanted = wanted
            self._changed.notify_all()
        while len(self._threads) < wanted:
            thread = threading.Thread(target=self._burn, args=(len(self._threads),), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _burn(self, index: int) -> None:
        lowest_priority()
        block = bytes(CHUNK)
        digest = hashlib.sha256()
        while True:
            with self._changed:
                while self.wanted <= index:
                    self._changed.wait()
            # Reading an int without the lock is safe under the GIL; a stale read only
            # burns one more chunk.
            while self.wanted > index:
                digest.update(block)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m daemon.burner",
        description="Burn CPU for a node's busy slots (started by the node; reads slot counts on stdin).",
    )
    parser.add_argument("--node", default="?", help="the node this burner works for (for messages and ps)")
    args = parser.parse_args(argv)
    die_with_parent()
    lowest_priority()
    slots = BusySlots()
    for line in sys.stdin.buffer:
        try:
            wanted = int(line)
        except ValueError:
            wanted = -1
        if not 0 <= wanted <= MAX_SLOTS:
            print(f"burner of node {args.node}: ignoring input {line!r}: want a slot count 0..{MAX_SLOTS}",
                  file=sys.stderr, flush=True)
            continue
        slots.set(wanted)
    return 0  # end of input: the node closed our stdin or died


if __name__ == "__main__":
    raise SystemExit(main())
