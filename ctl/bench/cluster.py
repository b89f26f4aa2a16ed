"""Real clusters for benchmarks: generated topologies on free ports, started and
stopped with ``ctl start`` / ``ctl stop`` in a private ECHOFINN_HOME, by pid, always.

A topology here is a balanced tree: node i's parent is node (i - 1) // fanout, the
shape the floor (:mod:`ctl.bench.floor`) builds from raw pyzmq sockets. ``shape`` other
than ``balanced`` uses ``daemon.topogen.generate``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from daemon.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class BenchError(UserError):
    """A measurement that could not be made (a cluster that did not start, a wave that
    came back short, broken accounting): ``ctl bench`` prints it and exits 1."""


# Where free_base_port looks: from FIRST_PORT up, PORT_STEP apart (tests/e2e/conftest.py
# holds the test port blocks of the first few ranges while a test runs ctl bench).
FIRST_PORT, PORT_STEP = 23000, 997


def free_base_port(n: int, start: int = FIRST_PORT) -> int:
    """A base port with 2n + 1 free consecutive ports on 127.0.0.1 — n nodes' ports, then
    their operator ports (a cluster with ``operator_port_offset = n``), and one more —
    checked by binding each in turn (one descriptor at a time: n may exceed the
    open-files limit)."""
    for base in range(start, 60000 - 2 * n, PORT_STEP):
        if all(port_free(port) for port in range(base, base + 2 * n + 1)):
            return base
    raise BenchError(f"no range of {2 * n + 1} free ports on 127.0.0.1")


def port_free(port: int) -> bool:
    """Whether ``port`` on 127.0.0.1 can be bound now (the test harness checks its port blocks so too)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def tree_parents(n: int, fanout: int = 2) -> list[int | None]:
    """Node i's parent in the balanced tree of ``n`` nodes and fan-out ``fanout``."""
    return [None if i == 0 else (i - 1) // fanout for i in range(n)]


def tree_toml(n: int, base: int, fanout: int = 2, cpus: int = 2, interval: float = 0.0, task_time: float = 1.0,
              name: str = "bench") -> str:
    lines = ["[cluster]", f'name = "{name}"', f"task_time = {task_time}", f"rebalance_interval = {interval}",
             f"base_port = {base}", f"operator_port_offset = {n}", ""]
    for i, parent in enumerate(tree_parents(n, fanout)):
        parents = f'["n{parent}"]' if parent is not None else "[]"
        lines += ["[[node]]", f'name = "n{i}"', f"cpus = {cpus}", f"parents = {parents}", ""]
    return "\n".join(lines)


def shaped_toml(n: int, shape: str, fanout: int, cpus: int, seed: int = 1) -> str:
    """A topology of ``shape``: ``balanced`` (:func:`tree_toml`) or a topogen shape."""
    if shape == "balanced":
        return tree_toml(n, free_base_port(n), fanout, cpus)
    from daemon.topogen import generate
    from daemon.topology import dumps

    topology = generate(n, shape, seed, max_children=fanout, cpus=(cpus, cpus), name="bench", base_port=free_base_port(n))
    return dumps(topology)


def with_per_process(text: str, per_process: int) -> str:
    """A topology's TOML (:func:`tree_toml`, :func:`shaped_toml`) with ``[cluster]
    nodes_per_process`` set (1: as it is)."""
    if per_process == 1:
        return text
    return text.replace("[cluster]\n", f"[cluster]\nnodes_per_process = {per_process}\n", 1)


class Cluster:
    """``with Cluster(text) as c:`` a running cluster of that topology, named ``bench``;
    ``c.topology``, ``c.start_s`` and, after the block, ``c.stop_s``. Stopped on the way
    out whatever happens; every process it saw is checked gone (``c.left`` lists any
    that was not, and is SIGKILLed by pid). Its ECHOFINN_HOME is private (a temporary
    folder) unless ``env`` names one."""

    def __init__(self, text: str, env: dict | None = None, name: str = "bench"):
        self.tmp = tempfile.mkdtemp(prefix="echofinn-bench-")
        self.env = dict(os.environ if env is None else env)
        # a private home, unless the caller chose one (the tests do, to check what is left)
        self.env.setdefault("ECHOFINN_HOME", os.path.join(self.tmp, "home"))
        # where the cluster's record and keys live: what an Operator in this process needs
        self.run_dir = Path(self.env["ECHOFINN_HOME"]) / "bench"
        self.path = os.path.join(self.tmp, f"{name}.toml")
        with open(self.path, "w") as f:
            f.write(text)
        self.start_s = self.stop_s = self.nodes_gone_s = None
        self.procs: list[psutil.Process] = []
        self.left: list[str] = []

    def ctl(self, *args, timeout: float = 600):
        return subprocess.run([sys.executable, "-m", "ctl", *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)

    def __enter__(self):
        from daemon.topology import load

        t = time.perf_counter()
        try:
            r = self.ctl("start", self.path)
            self.start_s = time.perf_counter() - t
            self._collect()
            if r.returncode:
                raise BenchError(f"ctl start {self.path} failed: {r.stdout.strip()} {r.stderr.strip()}")
            self.topology = load(self.path)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def _collect(self) -> None:
        """Remember the supervisor and its descendants, to check them gone later."""
        from daemon import rundir

        pid = rundir.read_pid(self.run_dir)
        try:
            root = psutil.Process(pid) if pid else None
            self.procs = [root, *root.children(recursive=True)] if root else []
        except psutil.Error:
            self.procs = []

    def node_processes(self) -> list[psutil.Process]:
        return [p for p in self.procs[1:] if p.is_running()]

    def stop(self) -> None:
        if self.stop_s is not None:
            return
        self._collect_more()
        nodes = self.node_processes()
        t = time.perf_counter()
        stopper = subprocess.Popen([sys.executable, "-m", "ctl", "stop", "-t", self.path], env=self.env, cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            while nodes and stopper.poll() is None:  # the nodes gone (reaped) while ctl stop runs
                nodes = [p for p in nodes if p.is_running()]
                time.sleep(0.005)
            self.nodes_gone_s = time.perf_counter() - t
            out, err = stopper.communicate(timeout=600)
        finally:
            if stopper.poll() is None:
                stopper.kill()
                stopper.wait()
        self.stop_s = time.perf_counter() - t
        if stopper.returncode:
            print(out, err, file=sys.stderr)
        for proc in self.procs:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    self.left.append(f"pid {proc.pid} {' '.join(proc.cmdline()).strip()}")
                    proc.kill()
            except psutil.Error:
                pass
        if not self.left and not self.env["ECHOFINN_HOME"].startswith(self.tmp):
            shutil.rmtree(self.run_dir, ignore_errors=True)  # its record names a file removed below
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _collect_more(self) -> None:
        seen = {p.pid for p in self.procs}
        if self.procs:
            try:
                self.procs += [p for p in self.procs[0].children(recursive=True) if p.pid not in seen]
            except psutil.Error:
                pass
