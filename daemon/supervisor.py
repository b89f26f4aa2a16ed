"""The supervisor: starts one cluster's node daemons on this host, watches them, stops them.

``python -m daemon.supervisor --topology FILE --run-dir DIR [--notify-fd FD] [--record]``,
started detached by ``ctl start``; ``ctl start --foreground`` runs :class:`Supervisor`
in-process. ``--record`` (``ctl start --record``) turns every node's flight recorder on,
as ``[cluster] record = true`` does; the nodes it starts (or restarts) get it too.

Theory of operation (ARCHITECTURE.md, "Processes"):

- Lifetimes nest. The supervisor starts one node daemon per node of the topology whose
  host is this one (forked from itself, daemon/zygote.py; ``ECHOFINN_SPAWN=exec``: a
  fresh interpreter each), each in its own process group inside the supervisor's session (so a
  terminal's Ctrl-C reaches the supervisor alone, which then stops the nodes in order).
  Each node arms PR_SET_PDEATHSIG and checks its parent once a second, so it dies with
  the supervisor even if the supervisor is SIGKILLed; burners die with their node the
  same way. The supervisor is also a *child subreaper* (prctl(2)): a burner orphaned by a
  killed node becomes its child and is reaped here, not left to the machine's init.
- Readiness is said, not guessed: each node gets the write end of a pipe
  (``--notify-fd``) and writes one line once its sockets are bound and it joins every
  new wave (a restarted node a second later: daemon/node.py ``ReadyLine``),
  ``ready PID ENDPOINT`` or ``error MESSAGE``, then closes it. So RUNNING means
  reachable. End of file without a line means the
  node died first; silence past the deadline means it hangs. Either way start fails,
  the other nodes are stopped and the exit status is non-zero.
- Signals are ordinary events (as in Circus): the handlers do nothing in Python, and
  ``signal.set_wakeup_fd`` turns each signal into a byte on a pipe that the one
  ``poll`` loop reads beside the notify pipes, with the next balancing round as its
  timeout. Children are reaped on SIGCHLD with ``waitpid(-1, WNOHANG)``, never by
  polling. The loop never waits on a node: every wait is a timer in that ``poll``,
  and balancing rounds run on a thread of their own (:class:`Balancer`).
- Restarts (as Supervisor and systemd do them; ``[cluster]`` keys ``restart``,
  ``restart_backoff_max``, ``restart_max_crashes``, ``restart_window``, see
  daemon/topology.py): a node that exits without being asked goes to BACKOFF and is
  started again after 0.1 s, the delay doubling with each crash within the window up to
  ``restart_backoff_max``; the ``restart_max_crashes``-th crash within
  ``restart_window`` seconds (or any exit under ``restart = "never"``) leaves it FATAL.
  A restarted node gets the same arguments, so it finds its journal in the run
  directory. A restart that does not say ready within ``start_timeout(1)`` is killed
  and counts as a crash. States per node (:class:`NodeProcess`): STARTING, RUNNING,
  BACKOFF, FATAL, STOPPED, each written to ``cluster.json`` with ``pid``, ``since``,
  ``restarts`` and ``last_exit`` as it changes.
- The run directory is how ``ctl`` finds the cluster: once a second the supervisor
  checks that ``cluster.json`` and its pid file are there and its own, and writes them
  again if not (a folder moved or removed under it is made anew, with a fresh log).
  It refuses a run directory whose supervisor still runs, and takes the keys it finds
  only once :func:`daemon.security.ensure_keys` has checked them to be this cluster's
  (ARCHITECTURE.md, "Launch state is fresh or verified"); it keeps them in memory and
  writes them back if they are removed or replaced while it runs (checked before every
  restart, and once a second by the keyring's presence): its nodes hold them.
- Stop (SIGTERM, SIGINT, SIGHUP): SIGTERM every node by pid, wait up to
  ``STOP_GRACE`` seconds, SIGKILL the survivors by pid, reap everything, record it in
  ``cluster.json``, remove the pid file. Nothing is ever killed by name.
- Whoever started the supervisor follows its progress through :data:`Progress` lines:
  ``starting N``, ``ready NODE PID ENDPOINT``, ``error MESSAGE``, then ``running PID``
  or ``failed N``. Detached, they go to ``--notify-fd``; in-process, to a callable.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import logging
import math
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

import psutil

from daemon import rundir, security, zygote
from daemon.errors import UserError
from daemon.lifecycle import become_subreaper, child_env, create_time
from daemon.node import journal_file, node_args
from daemon.topology import Topology, TopologyError, load, recording

START_TIMEOUT = 15.0  # seconds for every node to say ready ...
START_TIMEOUT_PER_NODE = 0.2  # ... plus this much per node: each imports pyzmq on 2 cores
STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL
BALANCING_TIMEOUT = 2.0  # deadline of one operator call during a balancing round
NOTIFY_LIMIT = 4096  # bytes a node may write on its notify pipe
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
FIRST_BACKOFF = 0.1  # seconds before the first restart of a node; doubles per crash in the window
RECORD_CHECK = 1.0  # seconds between checks that the run directory still holds our record
BALANCER_JOIN = 0.5  # seconds a stop waits for a balancing round in progress

# A node's states (NodeProcess).
STARTING, RUNNING, BACKOFF, FATAL, STOPPED = "STARTING", "RUNNING", "BACKOFF", "FATAL", "STOPPED"
NODE_STATES = (STARTING, RUNNING, BACKOFF, FATAL, STOPPED)

Progress = Callable[[str], None]  # receives one progress line, without the newline


# --- which nodes run here ----------------------------------------------------------------


def local_addresses() -> set[str]:
    """Names and addresses that mean this host."""
    names = {"localhost", socket.gethostname()}
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family in (socket.AF_INET, socket.AF_INET6):
                names.add(addr.address.split("%")[0])
    return names


def is_local_host(host: str, local: set[str] | None = None) -> bool:
    """True if a node on ``host`` runs on this machine. Names are not looked up in DNS:
    a start must not hang on a resolver; give such nodes an address or this host's name."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and (address.is_loopback or address.is_unspecified):
        return True
    return host in (local_addresses() if local is None else local)


def local_nodes(topology: Topology) -> list[str]:
    """The nodes this host's supervisor runs, in file order."""
    local = local_addresses()
    return [n.name for n in topology.nodes if is_local_host(n.host, local)]


def clear_journals(run_dir: Path, names: list[str]) -> None:
    """Remove the journals (daemon/journal.py) a previous run left for these nodes: a
    cluster started by ``ctl start`` begins with the topology's tasks only, while a node
    started again within a run recovers its queue from its journal."""
    for name in names:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(journal_file(run_dir, name) + suffix)
            except FileNotFoundError:
                pass


def readable_fds(fds: list[int], timeout: float | None) -> list[int]:
    """The descriptors of ``fds`` ready to read (or at end of file) within ``timeout``
    seconds: ``select.select``'s reading half over poll(2), which has no FD_SETSIZE
    limit (a supervisor of more than a thousand nodes holds more than 1,024 descriptors;
    select refuses any numbered 1,024 or more)."""
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


def _why_not(exc: OSError) -> str:
    """An OSError of starting a node, with the way out when it is the open-files limit."""
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return (f"{exc.strerror} (this process may open {soft}, at most {hard}: a cluster needs about four "
                "per node; `ulimit -n` raises the limit)")
    return str(exc)


def start_timeout(nodes: int) -> float:
    """Seconds a start of ``nodes`` node daemons may take before it counts as failed."""
    return START_TIMEOUT + START_TIMEOUT_PER_NODE * nodes


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


# --- one node daemon, as the supervisor sees it --------------------------------------------


class NodeProcess:
    """A node daemon as the supervisor sees it, across its restarts.

    States (:data:`NODE_STATES`, ``state`` in ``cluster.json``)::

        STARTING --ready--> RUNNING --exits on its own--> BACKOFF --delay--> STARTING
            |                                        +--> FATAL (policy "never", or the
            +--exits / not ready in time: a crash          restart_max_crashes-th crash
                                                           within restart_window)
        any state --stop--> STOPPED

    ``alive`` stays true until the process is reaped; ``exit_status`` is set then.
    ``restarts`` counts the starts after the first, ``last_exit`` says how the previous
    process ended, ``since`` (unix time) when the current state began.
    """

    def __init__(self, endpoints: dict[str, str], log: Path, operator_endpoints: dict[str, str] | None = None):
        # node -> endpoint, for each node this process serves (a NodeHost: several), in
        # order: the topology's until the ready line says where each is bound
        self.endpoints = dict(endpoints)
        # node -> its operator socket's endpoint (the topology's: daemon/topology.py)
        self.operator_endpoints = dict(operator_endpoints or {})
        self.names = tuple(self.endpoints)
        self.name = self.names[0]
        self.log = log
        self.state = STARTING
        self.since = time.time()
        self.proc: subprocess.Popen | None = None
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

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state, self.since = state, time.time()

    def starting(self, ready_by: float | None = None) -> None:
        """A new process is about to start: forget the previous one's words."""
        self.set_state(STARTING)
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
                self.set_state(RUNNING)
                return "\n".join(f"ready {name} {self.pid} {endpoint}" for name, endpoint in self.endpoints.items())
            return self.fail(f"node {self.name}: bad ready line {line!r} (pid {self.pid}); see {self.log}")
        if word == "error" and rest:
            # The node's message names the node and the port; keep it as it is.
            return self.fail(rest if self.name in rest else f"node {self.name}: {rest}")
        return self.fail(f"node {self.name}: unexpected line {line!r} on its notify pipe; see {self.log}")

    def fail(self, error: str) -> str:
        """The node cannot start: at the cluster's start that fails the start (the
        supervisor marks it FATAL); later it is a crash, counted once it is reaped."""
        self.error = error
        return f"error {error}"

    def reaped(self, code: int) -> None:
        self.alive, self.exit_status = False, code
        self.last_exit = describe_exit(code) + (f" ({self.error})" if self.error else "")
        if self.proc is not None:
            self.proc.returncode = code  # reaped here: Popen must not wait for it again

    @property
    def endpoint(self) -> str:
        """Where the first node this process serves is bound."""
        return self.endpoints[self.name]

    def record(self, name: str) -> dict:
        """The record of node ``name``, one this process serves."""
        return {
            "pid": self.pid,
            "create_time": self.create_time,
            "endpoint": self.endpoints[name],
            "operator_endpoint": self.operator_endpoints.get(name),
            "log": str(self.log),
            "state": self.state,
            "since": self.since,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "exit_status": self.exit_status,
            "error": self.error,
        }


# --- the supervisor --------------------------------------------------------------------


class Supervisor:
    """Runs one cluster's local nodes from start to stop. Use it from the main thread
    (signal handlers and the nodes' death signal need it)."""

    def __init__(self, topology: Topology, run_dir: Path, progress: Progress | None = None,
                 nodes: list[str] | None = None):
        """``nodes``: the nodes to run, by name (default: :func:`local_nodes`, those whose
        host is this one). daemon/mpi.py gives each rank an explicit share."""
        if topology.path is None:
            raise UserError(f"cluster {topology.cluster.name}: the supervisor needs a topology file the nodes can read")
        self.topology = topology
        self.name = topology.cluster.name
        self.run_dir = Path(run_dir)
        self.progress = progress or (lambda line: None)
        self.node_names = None if nodes is None else list(nodes)
        self.started_at = time.time()
        self.stopped_at: float | None = None  # when it stopped or failed: `ctl` says "stopped since"
        self.state = "starting"
        self.stopping = False
        self.nodes: dict[str, NodeProcess] = {}
        self.by_pid: dict[int, NodeProcess] = {}
        self.log = logging.getLogger(f"echofinn.supervisor.{self.name}")
        self._wakeup_r: int | None = None
        self._wakeup_w: int | None = None
        self._old_handlers: dict[int, object] = {}
        self._balancer: Balancer | None = None  # balancing rounds, on their own thread
        self._key_files: dict[str, bytes] = {}  # the cluster's keys, to write again if the run directory goes
        self._log_handler: logging.Handler | None = None

    def units(self) -> list[NodeProcess]:
        """Each supervised process once (a NodeHost's nodes share one), in start order."""
        return list(dict.fromkeys(self.nodes.values()))

    def groups(self, names: list[str]) -> list[tuple[str, ...]]:
        """``names`` in runs of ``[cluster] nodes_per_process``, in file order: the nodes
        each process serves."""
        k = self.topology.cluster.nodes_per_process
        return [tuple(names[i:i + k]) for i in range(0, len(names), k)]

    # -- the whole life ----------------------------------------------------------------

    def run(self) -> int:
        """Start the nodes, serve until a stop signal, stop them. Returns the exit status:
        0 after a requested stop, 1 if a node could not start. Raises UserError, leaving
        everything as it was, if the cluster is already running."""
        self.run_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        rundir.private_dir(self.run_dir, create=True)
        self._open_log()
        ok = False
        try:
            self._claim_run_dir()
            self._catch_signals()
            try:
                ok = self.start()
                if ok:
                    self.serve()
            finally:
                if self._balancer is not None:
                    self._balancer.close(BALANCER_JOIN)
                self.stop()
                self._release_signals()
                rundir.remove_pid(self.run_dir)
                self.log.info("supervisor pid %d exits", os.getpid())
        finally:
            self._close_log()
        return 0 if ok else 1

    def start(self) -> bool:
        names = local_nodes(self.topology) if self.node_names is None else self.node_names
        remote = [n for n in self.topology.names if n not in names]
        if remote:
            self.log.info("%d nodes are on other hosts, left to their supervisors: %s", len(remote), ", ".join(remote))
        if not names:
            hosts = sorted({n.host for n in self.topology.nodes})
            self.progress(f"error cluster {self.name}: no node runs on this host (hosts in {self.topology.path}: {', '.join(hosts)})")
            self.progress("failed 0")
            return False
        if self.topology.cluster.security == security.CURVE:
            try:  # `ctl start` has made them; a supervisor started by hand makes them here
                security.ensure_keys(self.run_dir, self.topology, names)
                self._key_files = security.read_files(self.run_dir)  # to write again if the folder goes
                security.preload(self.run_dir, self.topology, self._key_files)  # once here, inherited by forked nodes
            except security.KeyProblem as exc:
                self.progress(f"error {exc}")
                self.progress("failed 0")
                return False
        become_subreaper()
        raise_open_files_limit(len(names))
        clear_journals(self.run_dir, names)  # a new run starts empty; a restart recovers
        self.progress(f"starting {len(names)}")
        self.log.info("cluster %s: starting %d nodes from %s", self.name, len(names), self.topology.path)
        for group in self.groups(names):
            if not self._spawn(group):
                break  # the start fails: the nodes started so far are stopped below
        self._write_record()
        ok = self._wait_ready(time.monotonic() + start_timeout(len(names)))
        if not ok:
            failed = [n for n in self.units() if n.error]
            for node in failed:
                node.set_state(FATAL)
            self.state = "failed"
            self.progress(f"failed {len(failed)}")
            return False
        self.state = "running"
        self._write_record()
        rundir.set_current(self.name, self.run_dir.parent)
        self.log.info("cluster %s: %d nodes ready", self.name, len(names))
        self.progress(f"running {os.getpid()}")
        return True

    def serve(self) -> None:
        """Reap, restart and balance until a stop signal arrives.

        One ``poll`` over the signal pipe and the notify pipes of restarting nodes; its
        timeout is the nearest timer (a restart due, a restarting node's ready deadline,
        the next balancing round, the run directory check). Nothing here waits on a node:
        balancing rounds run on the :class:`Balancer`'s thread."""
        interval = self.topology.cluster.rebalance_interval
        next_round = time.monotonic() + interval if interval > 0 else None
        next_check = time.monotonic() + RECORD_CHECK
        while True:
            timers = [next_check] + ([next_round] if next_round is not None else [])
            timers += [n.restart_at for n in self.units() if n.restart_at is not None]
            timers += [n.ready_by for n in self.units() if n.ready_by is not None]
            timeout = max(0.0, min(timers) - time.monotonic())
            starting = {n.notify: n for n in self.units() if n.notify is not None}
            readable = readable_fds([*starting, self._wakeup_r], timeout)
            for fd in readable:  # notify pipes first: a node's last words come before its SIGCHLD
                if fd == self._wakeup_r:
                    if self._take_signals():
                        return
                elif starting[fd].notify == fd:
                    self._read_notify(starting[fd])
            now = time.monotonic()
            for node in self.units():
                if node.restart_at is not None and now >= node.restart_at:
                    self._restart(node)
                elif node.ready_by is not None and now >= node.ready_by and node.alive:
                    node.ready_by = None
                    node.fail(f"node {node.name}: not ready {start_timeout(1):.0f} s after its restart; see {node.log}")
                    self._signal([node], signal.SIGKILL)  # reaped on SIGCHLD: a crash
            if next_round is not None and now >= next_round:
                self.balance()
                next_round = now + interval
            if now >= next_check:
                self._check_run_dir()
                next_check = now + RECORD_CHECK

    def stop(self) -> None:
        """SIGTERM every node, SIGKILL what is left after the grace period, reap all."""
        self.stopping = True
        if self.state != "failed":
            self.state = "stopping"
        for node in self.units():
            if node.notify is not None:
                os.close(node.notify)
                node.notify = None
        live = [n for n in self.units() if n.alive]
        if live:
            self.log.info("stopping %d nodes in %d processes: SIGTERM %s", sum(len(n.names) for n in live), len(live),
                          " ".join(f"{','.join(n.names)}={n.pid}" for n in live))
        self._signal(live, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while any(n.alive for n in self.units()):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            readable = readable_fds([self._wakeup_r], left)
            if readable and self._take_signals():
                deadline = time.monotonic()  # asked twice: no more grace
        survivors = [n for n in self.units() if n.alive]
        if survivors:
            self.log.warning("not stopped after %.0f s, SIGKILL: %s", STOP_GRACE,
                             " ".join(f"{','.join(n.names)}={n.pid}" for n in survivors))
            self._signal(survivors, signal.SIGKILL)
            for node in survivors:
                self._wait_for(node)
        self._reap_adopted()
        for node in self.units():
            node.restart_at = node.ready_by = None  # a node in BACKOFF is not started again
            if node.state != FATAL:
                node.set_state(STOPPED)
        if self.state != "failed":
            self.state = "stopped"
        self.stopped_at = time.time()
        self._write_record()

    # -- balancing --------------------------------------------------------------------

    def balance(self) -> None:
        """Ask the balancer's thread for a round (skipped if one is still running)."""
        if self._balancer is None:
            self._balancer = Balancer(self.topology, self.log, self.run_dir)
        self._balancer.kick()

    # -- starting nodes ---------------------------------------------------------------

    def _spawn(self, names: tuple[str, ...]) -> bool:
        """Start the process of nodes ``names`` (one, or a NodeHost's); False (it failed,
        saying why) if no process could be made."""
        name = names[0]
        node = self.nodes.get(name) or NodeProcess({n: self.topology.endpoint(n) for n in names}, self.run_dir / f"{name}.log",
                                                    {n: self.topology.operator_endpoint(n) for n in names})
        node.starting()
        for member in names:
            self.nodes[member] = node
        try:
            read_end, write_end = os.pipe()
        except OSError as exc:
            self.progress(node.fail(f"node {name}: cannot start: {_why_not(exc)}"))
            return False
        command = [
            sys.executable, "-m", "daemon",
            "--topology", self.topology.path, *node_args(names),
            "--run-dir", str(self.run_dir), "--notify-fd", str(write_end),
            *(["--record"] if self.topology.cluster.record else []),  # the file may not say so (ctl start --record)
        ]
        try:
            if zygote.enabled():  # forked from this process, everything imported: daemon/zygote.py
                node.proc = zygote.spawn(self.topology, list(names), write_end, node.log, str(self.run_dir))
            else:
                with open(node.log, "ab") as log:
                    node.proc = subprocess.Popen(
                        command, pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=log,
                        stderr=subprocess.STDOUT, env=child_env(), process_group=0,
                    )
        except OSError as exc:
            os.close(read_end)
            self.progress(node.fail(f"node {name}: cannot start {sys.executable}: {_why_not(exc)}"))
            return False
        finally:
            os.close(write_end)  # the node holds the only write end: its exit means EOF
        os.set_blocking(read_end, False)
        node.notify, node.pid, node.alive = read_end, node.proc.pid, True
        node.create_time = create_time(node.pid)
        self.by_pid[node.pid] = node
        self.log.info("node %s: started pid %d, log %s", " ".join(names), node.pid, node.log)
        return True

    def _wait_ready(self, deadline: float) -> bool:
        """Read the notify pipes until every node has spoken, one failed, or time is up."""
        while True:
            waiting = {n.notify: n for n in self.units() if n.notify is not None}
            if not waiting or any(n.error for n in self.units()):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                for node in waiting.values():
                    self.progress(node.fail(f"node {node.name}: not ready after {start_timeout(len(self.nodes)):.0f} s; see {node.log}"))
                break
            readable = readable_fds([self._wakeup_r, *waiting], left)
            for fd in readable:
                if fd == self._wakeup_r:
                    if self._take_signals():
                        self.log.info("stop requested while starting")
                        for node in waiting.values():
                            node.fail(f"node {node.name}: start interrupted by a stop request")
                        self.progress("error start interrupted by a stop request")
                        return False
                else:
                    self._read_notify(waiting[fd])
        for node in self.units():
            if node.error:
                self.log.error("%s", node.error)
        return all(n.state == RUNNING for n in self.units())

    def _read_notify(self, node: NodeProcess) -> None:
        try:
            chunk = os.read(node.notify, NOTIFY_LIMIT)
        except BlockingIOError:
            return
        node.said += chunk
        if chunk and b"\n" not in node.said and len(node.said) < NOTIFY_LIMIT:
            return  # wait for the rest of the line
        os.close(node.notify)
        node.notify = None
        line = node.said.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        restarting = self.state == "running"
        if line:
            self.progress(node.heard(line))
            if node.state == RUNNING:
                self.log.info("node %s: ready at %s%s", node.name, node.endpoint,
                              f" (pid {node.pid}, restart {node.restarts})" if restarting else "")
                if restarting:
                    self._write_record()
            elif restarting:
                self.log.error("%s", node.error)
                self._signal([node], signal.SIGKILL)  # it exits anyway; reaped as a crash
            return
        if restarting:  # end of file without a word: it died before binding; reaped as a crash
            if node.alive:
                node.error = f"node {node.name}: exited before it was ready; see {node.log}"
            return
        # End of file without a word: the node died before binding. Its exit status, if
        # it is already reaped, makes the message.
        if node.alive:
            self._wait_for(node, timeout=1.0)
        how = describe_exit(node.exit_status) if not node.alive else "closed its notify pipe"
        self.progress(node.fail(f"node {node.name}: exited before it was ready ({how}); see {node.log}"))

    # -- reaping ----------------------------------------------------------------------

    def _reap(self) -> None:
        """Collect every child that has exited (on SIGCHLD): nodes and adopted orphans."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._reaped(pid, os.waitstatus_to_exitcode(status))

    def _reaped(self, pid: int, code: int) -> None:
        node = self.by_pid.pop(pid, None)
        if node is None:
            self.log.info("reaped adopted orphan pid %d (%s)", pid, describe_exit(code))
            return
        node.alive = False  # reaped: from here on its pid is never signalled
        if not self.stopping and self.state == "running":
            for _ in range(4):  # a restarting node's last words, if still in its pipe
                if node.notify is None:
                    break
                self._read_notify(node)
            if node.notify is not None:
                os.close(node.notify)
                node.notify = None
        node.reaped(code)
        if self.stopping or self.state != "running":  # asked to stop, or the cluster's own start
            self.log.info("node %s (pid %d): %s", node.name, pid, describe_exit(code))
            return
        self._crashed(node)

    # -- restarts ---------------------------------------------------------------------

    def _crashed(self, node: NodeProcess) -> None:
        """A node exited without being asked (or a restart failed): BACKOFF, or FATAL
        under policy "never" or at the restart_max_crashes-th crash in restart_window."""
        policy = self.topology.cluster
        now = time.monotonic()
        what = "exited" if node.state == RUNNING else "failed to start"
        node.ready_by = None
        node.crashes.append(now)
        while node.crashes and node.crashes[0] < now - policy.restart_window:
            node.crashes.popleft()
        if policy.restart == "never":
            node.set_state(FATAL)
            self.log.error("node %s (pid %s) %s: %s; restart policy never: FATAL", node.name, node.pid, what, node.last_exit)
        elif len(node.crashes) >= policy.restart_max_crashes:
            node.set_state(FATAL)
            self.log.error("node %s (pid %s) %s: %s; %d crashes within %g s: FATAL, not restarted again",
                           node.name, node.pid, what, node.last_exit, len(node.crashes), policy.restart_window)
        else:
            delay = min(FIRST_BACKOFF * 2 ** (len(node.crashes) - 1), policy.restart_backoff_max)
            node.restart_at = now + delay
            node.set_state(BACKOFF)
            self.log.error("node %s (pid %s) %s: %s; restart in %.1f s", node.name, node.pid, what, node.last_exit, delay)
        self._write_record()

    def _restart(self, node: NodeProcess) -> None:
        """Start a node in BACKOFF again (from the serve loop: never from a signal)."""
        node.restarts += 1
        self._ensure_run_dir()
        self._restore_keys()  # the restarted node reads its key pair there
        self._spawn(node.names)
        if not node.alive:  # could not even fork: one more crash
            node.last_exit = node.error
            self._crashed(node)
            return
        node.ready_by = time.monotonic() + start_timeout(1)
        self._write_record()

    def _wait_for(self, node: NodeProcess, timeout: float | None = None) -> None:
        """Block until ``node`` is reaped (after SIGKILL, or an EOF that means it is exiting)."""
        try:
            code = node.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return
        except ChildProcessError:  # reaped already by _reap
            return
        self._reaped(node.pid, code)

    def _reap_adopted(self) -> None:
        """Reap the orphans adopted as subreaper: burners of nodes that were SIGKILLed.
        They carry a pending SIGKILL from their death signal; make sure, then wait."""
        self._reap()
        try:
            children = psutil.Process().children()
        except psutil.Error:
            return
        for child in children:
            if child.pid in self.by_pid:
                continue  # our own node: reaped above
            try:
                os.kill(child.pid, signal.SIGKILL)
                _, status = os.waitpid(child.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                continue
            self._reaped(child.pid, os.waitstatus_to_exitcode(status))

    def _signal(self, nodes: list[NodeProcess], signum: int) -> None:
        for node in nodes:
            if not node.alive:
                continue  # reaped: its pid may name another process by now
            try:
                os.kill(node.pid, signum)  # by pid: it is our unreaped child, so it is ours
            except ProcessLookupError:
                pass

    # -- signals as events ------------------------------------------------------------

    def _catch_signals(self) -> None:
        self._wakeup_r, self._wakeup_w = os.pipe()
        os.set_blocking(self._wakeup_r, False)
        os.set_blocking(self._wakeup_w, False)
        signal.set_wakeup_fd(self._wakeup_w, warn_on_full_buffer=False)
        for signum in (signal.SIGCHLD, *STOP_SIGNALS):
            self._old_handlers[signum] = signal.signal(signum, _note_signal)

    def _release_signals(self) -> None:
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(-1)
        os.close(self._wakeup_r)
        os.close(self._wakeup_w)

    def _take_signals(self) -> bool:
        """Handle the signals that arrived; True if one of them asks to stop."""
        try:
            arrived = os.read(self._wakeup_r, 512)
        except BlockingIOError:
            return False
        stop = False
        for signum in arrived:
            if signum == signal.SIGCHLD:
                self._reap()
            elif signum in STOP_SIGNALS:
                self.log.info("%s received", signal.Signals(signum).name)
                stop = True
        return stop

    # -- the run directory ------------------------------------------------------------

    def _claim_run_dir(self) -> None:
        """Refuse to start over a live supervisor of this run directory; else take the folder.
        (Its own, not the cluster's: an MPI rank r > 0 has a folder of its own, and its
        launch's rank 0 runs the cluster's.)"""
        other = rundir.folder_supervisor_pid(self.run_dir)
        if other is not None and other != os.getpid():
            raise UserError(f"cluster {self.name} is already running (supervisor pid {other}); "
                            f"stop it with `ctl stop -t {self.topology.path}`")
        rundir.write_pid(self.run_dir, os.getpid())
        self._write_record()

    def _record(self) -> dict:
        me = os.getpid()
        policy = self.topology.cluster
        return {
            "cluster": self.name,
            "topology": self.topology.path,
            "run_dir": str(self.run_dir),
            "state": self.state,
            "restart_policy": policy.restart,
            "restart": {
                "policy": policy.restart, "first_backoff": FIRST_BACKOFF, "backoff_max": policy.restart_backoff_max,
                "max_crashes": policy.restart_max_crashes, "window": policy.restart_window,
            },
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "supervisor": {
                "pid": me,
                "create_time": create_time(me),
                "log": str(self.run_dir / rundir.SUPERVISOR_LOG),
            },
            "nodes": {name: node.record(name) for name, node in self.nodes.items()},
            "remote_nodes": [n for n in self.topology.names if n not in self.nodes] if self.nodes else [],
        }

    def _write_record(self) -> None:
        """Write ``cluster.json``. A run directory moved or removed under us is made again
        (with the pid file and a fresh log): the record is how ``ctl`` finds us."""
        path = self.run_dir / rundir.CLUSTER_FILE
        try:
            rundir.write_json_atomic(path, self._record())
            return
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.log.error("cannot write %s: %s", path, exc)
            return
        if self._ensure_run_dir():
            try:
                rundir.write_json_atomic(path, self._record())
            except OSError as exc:
                self.log.error("cannot write %s: %s", path, exc)

    def _ensure_run_dir(self) -> bool:
        """Make the run directory again if it is gone; False if that fails."""
        if self.run_dir.is_dir():
            return True
        try:
            self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.stopping:
                rundir.write_pid(self.run_dir, os.getpid())
        except OSError as exc:
            self.log.error("run directory %s is gone and cannot be made again: %s", self.run_dir, exc)
            return False
        self._reopen_log()
        self._restore_keys()  # nodes restarted from now on, and ctl, need them
        self.log.warning("run directory %s was gone (moved or removed): made it again; "
                         "logs of the nodes started before stay where they went, and a node "
                         "restarted from now on finds no journal (an empty queue)", self.run_dir)
        if self.state == "running":
            try:
                rundir.set_current(self.name, self.run_dir.parent)
            except OSError:
                pass
        return True

    def _restore_keys(self) -> None:
        """Put the keys the cluster runs with back into the run directory if they are not
        there as they were at the start (removed, or replaced while it ran): its nodes hold
        them, and a node restarted with other keys, or ``ctl`` using them, could not
        complete a handshake with the others."""
        if not self._key_files:
            return
        try:
            if security.read_files(self.run_dir) == self._key_files:
                return
            security.write_files(self.run_dir, self._key_files)
        except (OSError, security.KeyProblem) as exc:
            self.log.error("cannot write the keys of cluster %s again into %s: %s", self.name, self.run_dir, exc)
            return
        self.log.warning("%s did not hold the keys cluster %s runs with (removed or replaced while it ran): "
                         "written back", security.keys_dir(self.run_dir), self.name)

    def _check_run_dir(self) -> None:
        """Once a second: the record and the pid file are where ``ctl`` looks, and ours;
        the keys folder still has its keyring (a cheap sign that it is still there)."""
        if not (self.run_dir / rundir.CLUSTER_FILE).is_file():
            self._write_record()
        if self._key_files and not (security.keys_dir(self.run_dir) / security.KEYRING).is_file():
            self._restore_keys()
        if rundir.read_pid(self.run_dir) != os.getpid():
            try:
                rundir.write_pid(self.run_dir, os.getpid())
                self.log.warning("pid file %s was missing or damaged: written again", self.run_dir / rundir.PID_FILE)
            except OSError as exc:
                self.log.error("cannot write %s: %s", self.run_dir / rundir.PID_FILE, exc)

    def _open_log(self) -> None:
        handler = logging.FileHandler(self.run_dir / rundir.SUPERVISOR_LOG)
        handler.setFormatter(logging.Formatter(f"%(asctime)s supervisor[{os.getpid()}] %(levelname)s %(message)s"))
        self.log.addHandler(handler)
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        self._log_handler = handler

    def _reopen_log(self) -> None:
        """Log to the run directory's supervisor.log again (after the directory was made anew)."""
        old = self._log_handler
        try:
            self._open_log()
        except OSError:
            return
        if old is not None:
            self.log.removeHandler(old)
            old.close()

    def _close_log(self) -> None:
        for handler in list(self.log.handlers):
            self.log.removeHandler(handler)
            handler.close()


class Balancer:
    """Balancing rounds (echo, plan, move through :class:`daemon.operator.Operator`) on a
    thread of their own, so the supervisor's loop never waits on a node: a round against
    a silent node takes its deadlines. One operator, made and closed on that thread,
    serves every round (its connections stay open). A round asked for while one runs is
    merged into it."""

    def __init__(self, topology: Topology, log: logging.Logger, run_dir: Path | None = None):
        self.topology = topology
        self.log = log
        self.run_dir = run_dir  # where the operator key is (daemon/security.py)
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="balancer", daemon=True)

    def kick(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()
        self._wake.set()

    def close(self, wait: float) -> None:
        """Stop after the round in progress (its calls have deadlines); wait at most ``wait``."""
        self._closing = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(wait)

    def _run(self) -> None:
        from daemon.operator import Operator

        operator = None
        try:
            while not self._closing:
                self._wake.wait()
                if self._closing:
                    return
                try:
                    if operator is None:
                        operator = Operator(self.topology, timeout=BALANCING_TIMEOUT, run_dir=self.run_dir)
                    self._round(operator)
                finally:
                    self._wake.clear()
        finally:
            if operator is not None:
                operator.close()

    def _round(self, operator) -> None:
        try:
            report = operator.rebalance()
        except UserError as exc:  # a wave timed out or a node refused: try next round
            self.log.warning("balancing round failed: %s", exc)
            return
        except Exception:  # noqa: BLE001 — a broken round must not take the cluster down
            self.log.exception("balancing round crashed")
            return
        self.log.info(
            "balancing round: %d tasks moved in %d moves, imbalance %s -> %s, %.0f ms",
            report.get("moved", 0), len(report.get("moves", ())),
            report.get("imbalance_before"), report.get("imbalance_after"), report.get("elapsed_ms", 0.0),
        )


def _note_signal(signum, frame) -> None:
    """Nothing to do here: set_wakeup_fd has already written the signal's number."""


# --- python -m daemon.supervisor -------------------------------------------------------


def notify_fd_progress(fd: int) -> Progress:
    """Progress lines written to ``fd``, which is closed after the last one (``running``
    or ``failed``). A reader that went away does not stop the cluster."""
    is_open = True

    def progress(line: str) -> None:
        nonlocal is_open
        if not is_open:
            return
        last = line.startswith(("running", "failed"))
        try:
            os.write(fd, (line + "\n").encode())
        except OSError:  # ctl start was interrupted: nobody listens; carry on
            last = True
        if last:
            os.close(fd)
            is_open = False

    return progress


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m daemon.supervisor",
        description="Start, watch and stop one cluster's node daemons on this host (started by `ctl start`).",
    )
    parser.add_argument("--topology", required=True, help="the cluster's topology file (absolute path)")
    parser.add_argument("--run-dir", required=True, help="the cluster's run directory")
    parser.add_argument("--notify-fd", type=int, help="write progress lines to this fd, closed once running or failed")
    parser.add_argument("--record", action="store_true", help="every node records its steps ([cluster] record = true)")
    args = parser.parse_args(argv)
    progress = notify_fd_progress(args.notify_fd) if args.notify_fd is not None else print
    try:
        topology = load(os.path.abspath(args.topology))
        if args.record:
            topology = recording(topology)
        return Supervisor(topology, Path(args.run_dir).absolute(), progress).run()
    except (TopologyError, UserError) as exc:
        print(f"supervisor: error: {exc}", file=sys.stderr)
        progress(f"error {exc}")
        progress("failed 0")
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
