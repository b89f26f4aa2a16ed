"""Fixtures for end-to-end tests: real clusters, isolated, and proven gone afterwards.

Use the ``cluster_env`` fixture in any test under ``tests/e2e/``::

    pytestmark = pytest.mark.e2e

    def test_something(cluster_env):
        topo = cluster_env.topology("seed.toml", rebalance_interval=0)  # a copy on free ports
        r = cluster_env.ctl("start", topo)            # `python -m ctl start ...`, a real process
        assert r.returncode == 0, r.stderr
        status = cluster_env.ctl_json("status")       # parsed --json output (exit 0 asserted)
        cluster_env.ctl("echo", "-t", topo)

What it gives each test:

- ``home``: a private ``ECHOFINN_HOME`` (under ``tmp_path``), so clusters of concurrent
  tests never see each other; ``env`` is the environment every ``ctl`` runs with. The
  test's own process gets it too, so an in-process ``Operator`` finds the cluster's
  operator key (daemon/security.py).
- ``topology(file, nodes=None, **cluster)``: a copy of ``topologies/<file>`` whose nodes
  all sit on 127.0.0.1 in a block of ports reserved for this test (an flock'd lock
  file per block, so concurrent test runs on this machine do not collide, and each
  port bind-tested): the nodes' ports in its lower half, their operator ports in the
  upper (``operator_port_offset = OPERATOR_OFFSET``). ``cluster`` overrides ``[cluster]`` fields (``rebalance_interval=0``,
  ``task_time=60``); ``nodes={"root": {"tasks": 2}}`` overrides fields of nodes.
  ``ports(path)`` gives back ``{node: port}``; ``start(file, **cluster)`` copies and
  ``ctl start``s it (asserting it started). ``hold_bench_ports()``: for a test that runs
  ``ctl bench``, which picks its clusters' ports itself, the blocks where it looks first,
  so that no other test takes them meanwhile (and two benches take turns).
- ``ctl(*args, timeout=60, cwd=ROOT, env=None)`` runs ``[sys.executable, "-m", "ctl",
  *args]`` in ``cwd``, with ``env`` added to the test's environment, and returns the
  ``CompletedProcess`` (text, captured); ``ctl_json`` adds ``--json`` and parses;
  ``echo_reaches_every_node(topology)`` asserts that one echo wave reaches every node;
  ``wave_trace_holds(topology, wave, kind)`` fetches a recording cluster's trace of that
  wave and asserts Tel's wave properties on it (daemon/trace/check.py).
- ``module_cluster_env``: the same, one for a whole module, for tests that only read
  from a cluster they can share (see the fixture).
- ``copy_in_keys_of_another_cluster(topology)``: a leftover a user can make (tests of
  "Launch state is fresh or verified", ARCHITECTURE.md).
- ``processes()``: every live process started under this test's home (found by the
  ``ECHOFINN_HOME`` in its environment, which supervisors, nodes and burners inherit);
  ``gone(pid, create_time=None)``: that process is gone and reaped (or the pid reused).

Teardown runs ``ctl stop -t`` for every cluster this test started (unless no process of
the test's is left: all stopped by the test itself; a cluster it stopped answers "nothing
to stop", exit 1: not a problem), then checks by pid —
the supervisors and nodes that ``cluster.json`` records, and every process seen carrying
this test's home — that nothing is left, zombies included. Anything left is SIGKILLed
by pid as a last resort and the test FAILS, naming it.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import psutil
import pytest
import tomli_w

from ctl.bench import cluster as bench_cluster
from ctl.bench.cluster import port_free

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGIES = ROOT / "topologies"
# Port blocks for tests: below Linux's ephemeral range (32768+), where outgoing
# connections pick their source ports, and above the shipped topologies' 7100-7599.
PORT_BLOCK = 100
# Each node has two ports (daemon/topology.py): its inbox in the block's lower half, its
# operator port in the upper half (operator_port_offset = OPERATOR_OFFSET).
OPERATOR_OFFSET = PORT_BLOCK // 2
PORT_FIRST, PORT_LAST = 20000, 32000
PORT_LOCKS = Path("/tmp/echofinn-test-ports")
STOP_TIMEOUT = 30


class ClusterEnv:
    """One test's private world of clusters. See the module docstring."""

    OPERATOR_OFFSET = OPERATOR_OFFSET  # for topologies a test writes itself

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.home = tmp_path / "home"
        self.env = dict(os.environ)
        self.env["ECHOFINN_HOME"] = str(self.home)
        self.env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        self.env.pop("ECHOFINN_PARENT_PID", None)
        self.env.pop("ECHOFINN_CLUSTER", None)  # a choice of the shell that runs the tests is not the test's
        self._locks: list = []
        self.started: set[str] = set()  # topology files of clusters started with `ctl start`
        self.seen: dict[tuple, psutil.Process] = {}  # (pid, start) -> every process of ours observed

    # -- topologies -------------------------------------------------------------------

    def topology(self, file: str = "seed.toml", nodes: dict | None = None, **cluster) -> Path:
        with open(TOPOLOGIES / file, "rb") as f:
            data = tomllib.load(f)
        count = len(data["node"])
        data.setdefault("cluster", {})
        data["cluster"].update({"host": "127.0.0.1", "base_port": self._reserve_ports(count),
                                "operator_port_offset": OPERATOR_OFFSET}, **cluster)
        for node in data["node"]:
            node.pop("port", None)
            node.pop("host", None)
            node.update((nodes or {}).get(node["name"], {}))
        path = self.tmp / file
        path.write_text(tomli_w.dumps(data))
        return path

    @staticmethod
    def ports(path: Path) -> dict[str, int]:
        from daemon.topology import load

        topology = load(path)
        return {n.name: n.port for n in topology.nodes}

    def _reserve_ports(self, count: int) -> int:
        """The base of a block with ``count`` free ports from it and ``count`` from
        OPERATOR_OFFSET above it (a topology's ``operator_port_offset = OPERATOR_OFFSET``)."""
        assert count <= OPERATOR_OFFSET, f"a test topology of {count} nodes needs more than one port block"
        PORT_LOCKS.mkdir(exist_ok=True)
        blocks = list(range(PORT_FIRST, PORT_LAST, PORT_BLOCK))
        random.shuffle(blocks)
        for base in blocks:
            lock = open(PORT_LOCKS / f"{base}.lock", "w")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            if all(port_free(port) and port_free(port + OPERATOR_OFFSET) for port in range(base, base + count)):
                self._locks.append(lock)  # held (flock) until teardown
                return base
            lock.close()
        raise RuntimeError(f"no free block of {count} ports in {PORT_FIRST}-{PORT_LAST}")

    def hold_bench_ports(self, ranges: int = 3, nodes: int = 32, timeout: float = 90) -> None:
        """Hold, until teardown, the port blocks covering the first ``ranges`` ranges of
        ``nodes`` ports where ``ctl bench`` looks for free ports (ctl/bench/cluster.py
        ``free_base_port``). The bench binds whatever it finds free there, so a test of
        this run (on another xdist worker) or of a concurrent run could otherwise reserve
        the same block and lose the race to bind it. Two holders take turns: the locks are
        taken in ascending order, waiting up to ``timeout`` seconds for each."""
        starts = [bench_cluster.FIRST_PORT + k * bench_cluster.PORT_STEP for k in range(ranges)]
        blocks = sorted({PORT_FIRST + (port - PORT_FIRST) // PORT_BLOCK * PORT_BLOCK
                         for start in starts for port in (start, start + nodes)})
        PORT_LOCKS.mkdir(exist_ok=True)
        for base in blocks:
            lock = open(PORT_LOCKS / f"{base}.lock", "w")
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        lock.close()
                        raise RuntimeError(f"{PORT_LOCKS / f'{base}.lock'}: held by another test for {timeout:.0f} s")
                    time.sleep(0.1)
            self._locks.append(lock)

    def start(self, file: str = "seed.toml", **cluster) -> Path:
        """``ctl start`` a copy of ``topologies/<file>`` (no automatic balancing unless
        ``rebalance_interval`` says so); asserts it started and returns its path."""
        cluster.setdefault("rebalance_interval", 0)
        path = self.topology(file, **cluster)
        r = self.ctl("start", path)
        assert r.returncode == 0, r.stdout + r.stderr
        return path

    # -- ctl ------------------------------------------------------------------------

    def ctl(self, *args, timeout: float = 60, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
        """``python -m ctl ARGS`` in ``cwd`` (default: the repository), with this test's
        environment plus ``env``."""
        result = subprocess.run(
            [sys.executable, "-m", "ctl", *map(str, args)], env={**self.env, **(env or {})}, cwd=cwd,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
        )
        self.processes()  # remember what runs now, for the teardown's check
        if args[:1] == ("start",) and len(args) > 1 and result.returncode == 0 and "-t" not in args:
            from ctl.shipped import shipped_path

            path = Path(cwd, args[1])  # a file, else a shipped topology's name (else nodes: not a cluster start)
            shipped = None if path.exists() else shipped_path(str(args[1]))
            if path.exists() or shipped is not None:
                self.started.add(str(path if path.exists() else Path(shipped).absolute()))
        return result

    def ctl_json(self, *args, timeout: float = 60, env: dict | None = None) -> dict:
        result = self.ctl(*args, "--json", timeout=timeout, env=env)
        assert result.returncode == 0, f"ctl {' '.join(map(str, args))}: {result.returncode}\n{result.stderr}"
        return json.loads(result.stdout)

    @staticmethod
    def gone(pid: int, create_time: float | None = None) -> bool:
        """True if process ``pid`` is gone and reaped (no zombie), or the pid now names
        another process (a different start time). A node never started has no pid: gone."""
        if pid is None:
            return True
        try:
            proc = psutil.Process(pid)
            return create_time is not None and abs(proc.create_time() - create_time) > 0.05
        except psutil.NoSuchProcess:
            return True

    def record(self, cluster: str) -> dict:
        return json.loads((self.home / cluster / "cluster.json").read_text())

    def echo_reaches_every_node(self, topology: Path, via: Path | None = None) -> dict:
        """One echo wave (``ctl echo -t VIA``: a published MPI topology, say; default
        ``topology``) that must reach every node of ``topology``; returns its snapshot."""
        from daemon.topology import load

        result = self.ctl("echo", "-t", via or topology, "--timeout", "10", "--json")
        snapshot = json.loads(result.stdout) if result.stdout else {}
        reached, names = sorted(n["name"] for n in snapshot.get("nodes", [])), sorted(load(topology).names)
        assert result.returncode == 0 and reached == names, (
            f"ctl echo exit {result.returncode}: reached {len(reached)} of {len(names)} nodes, "
            f"missing {snapshot.get('missing')} {result.stderr}")
        return snapshot

    def wave_trace_holds(self, topology: Path, wave: str, kind: str) -> dict:
        """Fetch every node's recorded steps of ``wave`` (the cluster records: started
        with ``record=True``) as ``ctl echo|finn --trace`` does, and assert Tel's wave
        properties on them (daemon/trace/check.py, what ``ctl trace check`` runs) with
        every node answering; returns the trace's dict."""
        from daemon.operator import Operator
        from daemon.topology import load
        from daemon.trace.check import check
        from daemon.trace.model import Trace

        with Operator(load(topology), timeout=10) as op:
            trace = op.trace([wave], wave, kind)
        assert trace["missing"] == [], f"wave {wave}: no trace from {trace['missing']}"
        violations, summaries = check(Trace.from_dict(trace))
        assert not violations, "\n".join(map(str, violations))
        assert [(s.wave, s.kind) for s in summaries] == [(wave, kind)], summaries
        return trace

    def copy_in_keys_of_another_cluster(self, topology: Path) -> Path:
        """Copy into the run directory of ``topology``'s cluster the keys that ``ctl keygen``
        made for another cluster (the same file under the name "other"), as a user might;
        returns the keys folder."""
        import shutil

        from daemon.topology import load

        name = load(topology).cluster.name
        other = self.tmp / "other.toml"
        other.write_text(topology.read_text().replace(f'name = "{name}"', 'name = "other"', 1))
        made = self.ctl("keygen", "-t", other)
        assert made.returncode == 0, made.stderr
        (self.home / name).mkdir(mode=0o700, exist_ok=True)
        shutil.copytree(self.home / "other" / "keys", self.home / name / "keys")
        return self.home / name / "keys"

    # -- processes ------------------------------------------------------------------

    def processes(self) -> list[psutil.Process]:
        """Live processes (zombies aside) carrying this test's ECHOFINN_HOME."""
        found = []
        for proc in psutil.process_iter():
            if proc.pid == os.getpid():
                continue
            try:
                if proc.environ().get("ECHOFINN_HOME") == str(self.home):
                    found.append(proc)
            except psutil.Error:  # gone, a zombie, or not ours to read
                continue
        for proc in found:
            self._saw(proc)
        return found

    def _saw(self, proc: psutil.Process) -> None:
        try:
            self.seen.setdefault((proc.pid, proc.create_time()), proc)
        except psutil.Error:
            pass

    def _recorded(self) -> list[psutil.Process]:
        procs = []
        for record_file in sorted(self.home.glob("*/cluster.json")):
            record = _load_record(record_file)
            entries = [record.get("supervisor") or {}, *(record.get("nodes") or {}).values()]
            for entry in entries:
                pid = entry.get("pid")
                if type(pid) is not int or pid <= 0:  # never started (psutil.Process(None) is this process)
                    continue
                try:
                    proc = psutil.Process(pid)
                except psutil.Error:
                    continue
                if entry.get("create_time") is None or abs(proc.create_time() - entry["create_time"]) < 0.05:
                    procs.append(proc)
        return procs

    def teardown(self) -> list[str]:
        """Stop every cluster, then list (and SIGKILL) whatever is left. Returns problems."""
        problems = []
        self.processes()
        for proc in self._recorded():
            self._saw(proc)
        topologies = {_load_record(f).get("topology") for f in self.home.glob("*/cluster.json")}
        if not self._recorded() and not any(_still_here(p) for p in self.seen.values()):
            topologies, self.started = set(), set()  # stopped by the test itself: nothing for ctl stop to do
        for topology in sorted(t for t in topologies | self.started if isinstance(t, str)):
            try:
                result = self.ctl("stop", "-t", topology, timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                problems.append(f"`ctl stop -t {topology}` did not finish in {STOP_TIMEOUT} s")
                continue
            if result.returncode != 0 and "nothing to stop" not in result.stderr:  # stopped by the test itself
                problems.append(f"`ctl stop -t {topology}` exited {result.returncode}: {result.stderr.strip()}")
        self.processes()  # anything still carrying our home joins the list
        left = [p for p in self.seen.values() if _still_here(p)]
        for proc in left:
            problems.append(f"left behind: {_describe(proc)}")
            try:
                proc.send_signal(signal.SIGKILL)  # psutil checks the pid still names this process
            except psutil.Error:
                pass
        for lock in self._locks:
            lock.close()
        return problems


def _load_record(path: Path) -> dict:
    """A cluster.json as a dict; {} for one a test damaged on purpose."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict):
        return {}
    record["nodes"] = record.get("nodes") if isinstance(record.get("nodes"), dict) else {}
    record["nodes"] = {k: v for k, v in record["nodes"].items() if isinstance(v, dict)}
    if not isinstance(record.get("supervisor"), dict):
        record["supervisor"] = {}
    return record


def _still_here(proc: psutil.Process) -> bool:
    """True if this very process (not a reuse of its pid) exists, zombie or not."""
    try:
        return proc.is_running()
    except psutil.Error:
        return False


def _describe(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid} [{proc.status()}] {' '.join(proc.cmdline()) or proc.name()}"
    except psutil.Error:
        return f"pid {proc.pid}"


@pytest.fixture
def cluster_env(tmp_path, monkeypatch):
    env = ClusterEnv(tmp_path)
    monkeypatch.setenv("ECHOFINN_HOME", str(env.home))
    yield env
    problems = env.teardown()
    if problems:
        pytest.fail("cluster teardown:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def module_cluster_env(tmp_path_factory):
    """One ClusterEnv for the tests of a module that only read from a cluster: they share
    its clusters (started once, by a module fixture of theirs) instead of each starting and
    stopping its own. Its teardown checks the same as ``cluster_env``'s, once, after the
    module's last test on this worker (a problem fails that test's teardown). Tests that
    share a cluster belong to one xdist group, so that one worker runs them all."""
    env = ClusterEnv(tmp_path_factory.mktemp("module"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ECHOFINN_HOME", str(env.home))
        yield env
        problems = env.teardown()
    if problems:
        pytest.fail("shared cluster teardown:\n  " + "\n  ".join(problems), pytrace=False)

