"""A real terminal for ``ctl top``: a pseudo-terminal whose far end is pyte.

``PtyTerminal(argv, env, cols, rows)`` starts the command on the slave side of a pty
(stdin, stdout and stderr, as a shell would, in a new session so the pty is its
controlling terminal); everything it writes goes through a pyte screen, and what pyte
answers (the cursor position blessed asks for while probing the terminal) is written
back as the terminal's reply. Keys are bytes written to the master side.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pyte

import polling
from top_frames import ROOT

KEYS = {
    "up": b"\x1b[A", "down": b"\x1b[B", "pgup": b"\x1b[5~", "pgdn": b"\x1b[6~",
    "enter": b"\r", "esc": b"\x1b", "ctrl-c": b"\x03",
}


class _AnsweringScreen(pyte.Screen):
    """A pyte screen that keeps what it would answer to the program (CPR, DA)."""

    def __init__(self, cols: int, rows: int):
        super().__init__(cols, rows)
        self.replies: list[str] = []
        self.private_modes: list[tuple[bool, tuple[int, ...]]] = []  # (set?, modes) in order

    def write_process_input(self, data: str) -> None:
        self.replies.append(data)

    def set_mode(self, *modes, **kwargs) -> None:
        if kwargs.get("private"):
            self.private_modes.append((True, modes))
        super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes, **kwargs) -> None:
        if kwargs.get("private"):
            self.private_modes.append((False, modes))
        super().reset_mode(*modes, **kwargs)


def _take_terminal() -> None:
    """In the child, after setsid: make the pty (its stdin) the controlling terminal, so
    that Ctrl-C on it sends SIGINT and a resize sends SIGWINCH, as in a real terminal.
    SIGINT and SIGQUIT back to their defaults: a test run started as a background job
    of a non-interactive shell ignores them, the child would inherit that, and Python
    leaves an inherited SIGINT ignored (Ctrl-C would do nothing)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


class PtyTerminal:
    def __init__(self, argv: list[str], env: dict, cols: int = 100, rows: int = 30, cwd=None):
        self.master, slave = os.openpty()
        self.resize(cols, rows, fd=slave)
        self.screen = _AnsweringScreen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()  # everything the program wrote, for assertions on bytes
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
            start_new_session=True, close_fds=True, preexec_fn=_take_terminal,
        )
        os.close(slave)
        self.exit_code: int | None = None

    def resize(self, cols: int, rows: int, fd: int | None = None) -> None:
        fd = self.master if fd is None else fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        if fd == self.master:  # the kernel sends SIGWINCH to the foreground group
            self.screen.resize(rows, cols)

    def pump(self, seconds: float = 0.1) -> None:
        """Read what the program writes for ``seconds`` (at least one select)."""
        deadline = time.monotonic() + seconds
        while True:
            left = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: the program closed the terminal (it exited)
                    data = b""
                if not data:
                    return
                self.raw.extend(data)
                self.stream.feed(data)
                for reply in self.screen.replies:
                    os.write(self.master, reply.encode())
                self.screen.replies.clear()
            if time.monotonic() >= deadline:
                return

    def wait_for(self, predicate, timeout: float = 60.0, what: str = "the screen") -> None:
        """Pump until ``predicate(self)`` holds; fail with the screen if not (at once if
        ctl top exited: its last output is pumped first)."""
        def exited() -> str | None:
            if self.proc.poll() is None:
                self.pump(0.05)  # the wait between two looks: reading what ctl top writes
                return None
            self.pump(0.05)
            return f"ctl top exited ({self.proc.returncode})"

        polling.wait_until(lambda: predicate(self), timeout, what, every=0, unless=exited,
                           detail=lambda: "screen:\n" + self.text())

    def press(self, key: str) -> None:
        os.write(self.master, KEYS.get(key, key.encode()))

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def line_with(self, word: str, start: int = 0) -> int | None:
        """The first screen line at or below ``start`` that contains ``word``."""
        for y, line in enumerate(self.screen.display):
            if y >= start and word in line:
                return y
        return None

    def wait_exit(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.pump(0.05)
        self.pump(0.05)
        if self.proc.poll() is None:  # still running: faulthandler (-X faulthandler) says where
            os.kill(self.proc.pid, signal.SIGABRT)
            self.pump(2.0)
            tail = bytes(self.raw[-6000:]).decode(errors="replace")
            raise AssertionError(f"the program did not exit within {timeout:.0f} s; its threads:\n{tail}")
        self.exit_code = self.proc.returncode
        return self.exit_code

    def close(self) -> None:
        """Stop the program by its pid if it still runs, and close the pty."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        os.close(self.master)


def start_seed(cluster_env, **cluster):
    topo = cluster_env.topology("seed.toml", rebalance_interval=0, **cluster)
    started = cluster_env.ctl("start", topo)
    assert started.returncode == 0, started.stderr
    return topo


def top_in_pty(cluster_env, topo, *args, cols=100, rows=30) -> PtyTerminal:
    env = dict(cluster_env.env, TERM="xterm-256color", COLORTERM="truecolor", LANG="C.UTF-8")
    env.pop("NO_COLOR", None)
    env.pop("LC_ALL", None)
    argv = [sys.executable, "-X", "faulthandler", "-m", "ctl", "top", "-t", str(topo), "--interval", "0.3", *args]
    return PtyTerminal(argv, env, cols, rows, cwd=ROOT)


def node_row(t: PtyTerminal, name: str) -> str:
    y = t.line_with(f" {name} ", 4) or t.line_with(f"▶{name} ", 4)
    return t.screen.display[y] if y is not None else ""
