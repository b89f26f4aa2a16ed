"""The supervisor: starts one cluster's node daemons on this host, watches them, stops them.

``python -m daemon.supervisor --topology FILE --run-dir DIR [--notify-fd FD]``, started
detached by ``ctl start``; ``ctl start --foreground`` runs :class:`Supervisor` in-process.

Theory of operation (DESIGN §1):

- Lifetimes nest. The supervisor starts one node daemon per node of the topology whose
  host is this one, each in its own process group inside the supervisor's session (so a
  terminal's Ctrl-C reaches the supervisor alone, which then stops the nodes in order).
  Each node arms PR_SET_PDEATHSIG and checks its parent once a second, so it dies with
  the supervisor even if the supervisor is SIGKILLed; burners die with their node the
  same way. The supervisor is also a *child subreaper* (prctl(2)): a burner orphaned by a
  killed node becomes its child and is reaped here, not left to the machine's init.
- Readiness is said, not guessed: each node gets the write end of a pipe
  (``--notify-fd``) and writes one line once its sockets are bound, ``ready PID
  ENDPOINT`` or ``error MESSAGE``, then closes it. End of file without a line means the
  node died first; silence past the deadline means it hangs. Either way start fails,
  the other nodes are stopped and the exit status is non-zero.
- Signals are ordinary events (as in Circus): the handlers do nothing in Python, and
  ``signal.set_wakeup_fd`` turns each signal into a byte on a pipe that the one
  ``select`` loop reads beside the notify pipes, with the next balancing round as its
  timeout. Children are reaped on SIGCHLD with ``waitpid(-1, WNOHANG)``, never by
  polling. Restart policy: none — a node that dies is recorded with its exit status.
- Stop (SIGTERM, SIGINT, SIGHUP): SIGTERM every node by pid, wait up to
  ``STOP_GRACE`` seconds, SIGKILL the survivors by pid, reap everything, record it in
  ``cluster.json``, remove the pid file. Nothing is ever killed by name.
- Whoever started the supervisor follows its progress through :data:`Progress` lines:
  ``starting N``, ``ready NODE PID ENDPOINT``, ``error MESSAGE``, then ``running PID``
  or ``failed N``. Detached, they go to ``--notify-fd``; in-process, to a callable.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import psutil

from daemon import rundir, security
from daemon.errors import UserError
from daemon.lifecycle import become_subreaper, child_env, create_time
from daemon.topology import Topology, TopologyError, load

START_TIMEOUT = 15.0  # seconds for every node to say ready ...
START_TIMEOUT_PER_NODE = 0.2  # ... plus this much per node: each imports pyzmq on 2 cores
STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL
BALANCING_TIMEOUT = 2.0  # deadline of one operator call during a balancing round
NOTIFY_LIMIT = 4096  # bytes a node may write on its notify pipe
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

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
    """A node daemon's process and what it said.

    States: ``starting`` → ``ready`` | ``failed`` | ``stopped``; ``ready`` → ``exited``
    (died on its own) | ``stopped`` (by the supervisor). ``alive`` stays true until it
    is reaped; ``exit_status`` is set then.
    """

    def __init__(self, name: str, endpoint: str, log: Path):
        self.name = name
        self.endpoint = endpoint
        self.log = log
        self.state = "starting"
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.create_time: float | None = None
        self.exit_status: int | None = None
        self.error: str | None = None
        self.alive = False
        self.notify: int | None = None  # read end of the notify pipe, while starting
        self.said = b""

    def heard(self, line: str) -> str:
        """Take the node's one notify line; returns the progress line to pass on."""
        word, _, rest = line.partition(" ")
        if word == "ready":
            pid, _, endpoint = rest.partition(" ")
            if pid == str(self.pid) and endpoint:
                self.state, self.endpoint = "ready", endpoint
                return f"ready {self.name} {self.pid} {self.endpoint}"
            return self.fail(f"node {self.name}: bad ready line {line!r} (pid {self.pid}); see {self.log}")
        if word == "error" and rest:
            # The node's message names the node and the port; keep it as it is.
            return self.fail(rest if self.name in rest else f"node {self.name}: {rest}")
        return self.fail(f"node {self.name}: unexpected line {line!r} on its notify pipe; see {self.log}")

    def fail(self, error: str) -> str:
        self.state, self.error = "failed", error
        return f"error {error}"

    def reaped(self, code: int, stopping: bool) -> None:
        self.alive, self.exit_status = False, code
        if self.proc is not None:
            self.proc.returncode = code  # reaped here: Popen must not wait for it again
        if stopping and self.state in ("starting", "ready"):
            self.state = "stopped"
        elif self.state == "ready":
            self.state = "exited"

    def record(self) -> dict:
        return {
            "pid": self.pid,
            "create_time": self.create_time,
            "endpoint": self.endpoint,
            "log": str(self.log),
            "state": self.state,
            "exit_status": self.exit_status,
            "exit": None if self.alive or self.exit_status is None else describe_exit(self.exit_status),
            "error": self.error,
        }


# --- the supervisor --------------------------------------------------------------------


class Supervisor:
    """Runs one cluster's local nodes from start to stop. Use it from the main thread
    (signal handlers and the nodes' death signal need it)."""

    def __init__(self, topology: Topology, run_dir: Path, progress: Progress | None = None):
        if topology.path is None:
            raise UserError(f"cluster {topology.cluster.name}: the supervisor needs a topology file the nodes can read")
        self.topology = topology
        self.name = topology.cluster.name
        self.run_dir = Path(run_dir)
        self.progress = progress or (lambda line: None)
        self.started_at = time.time()
        self.state = "starting"
        self.stopping = False
        self.nodes: dict[str, NodeProcess] = {}
        self.by_pid: dict[int, NodeProcess] = {}
        self.log = logging.getLogger(f"echofinn.supervisor.{self.name}")
        self._wakeup_r: int | None = None
        self._wakeup_w: int | None = None
        self._old_handlers: dict[int, object] = {}
        self._operator = None  # the balancer's client, made on the first round

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
                if self._operator is not None:
                    self._operator.close()
                self.stop()
                self._release_signals()
                rundir.remove_pid(self.run_dir)
                self.log.info("supervisor pid %d exits", os.getpid())
        finally:
            self._close_log()
        return 0 if ok else 1

    def start(self) -> bool:
        names = local_nodes(self.topology)
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
            except security.KeyProblem as exc:
                self.progress(f"error {exc}")
                self.progress("failed 0")
                return False
        become_subreaper()
        self.progress(f"starting {len(names)}")
        self.log.info("cluster %s: starting %d nodes from %s", self.name, len(names), self.topology.path)
        for name in names:
            self._spawn(name)
        self._write_record()
        ok = self._wait_ready(time.monotonic() + start_timeout(len(names)))
        if not ok:
            failed = [n for n in self.nodes.values() if n.state == "failed"]
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
        """Reap and balance until a stop signal arrives."""
        interval = self.topology.cluster.rebalance_interval
        next_round = time.monotonic() + interval if interval > 0 else None
        while True:
            timeout = None if next_round is None else max(0.0, next_round - time.monotonic())
            readable, _, _ = select.select([self._wakeup_r], [], [], timeout)
            if readable and self._take_signals():
                return
            if next_round is not None and time.monotonic() >= next_round:
                self.balance()
                next_round = time.monotonic() + interval

    def stop(self) -> None:
        """SIGTERM every node, SIGKILL what is left after the grace period, reap all."""
        self.stopping = True
        if self.state != "failed":
            self.state = "stopping"
        for node in self.nodes.values():
            if node.notify is not None:
                os.close(node.notify)
                node.notify = None
        live = [n for n in self.nodes.values() if n.alive]
        if live:
            self.log.info("stopping %d nodes: SIGTERM %s", len(live), " ".join(f"{n.name}={n.pid}" for n in live))
        self._signal(live, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while any(n.alive for n in self.nodes.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            readable, _, _ = select.select([self._wakeup_r], [], [], left)
            if readable and self._take_signals():
                deadline = time.monotonic()  # asked twice: no more grace
        survivors = [n for n in self.nodes.values() if n.alive]
        if survivors:
            self.log.warning("not stopped after %.0f s, SIGKILL: %s", STOP_GRACE, " ".join(f"{n.name}={n.pid}" for n in survivors))
            self._signal(survivors, signal.SIGKILL)
            for node in survivors:
                self._wait_for(node)
        self._reap_adopted()
        if self.state != "failed":
            self.state = "stopped"
        self._write_record()

    # -- balancing --------------------------------------------------------------------

    def balance(self) -> None:
        """One balancing round through the operator (echo, plan, move), logged. One
        operator serves every round: its connections to the nodes stay open."""
        from daemon.operator import Operator

        try:
            if self._operator is None:
                self._operator = Operator(self.topology, timeout=BALANCING_TIMEOUT, run_dir=self.run_dir)
            report = self._operator.rebalance()
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

    # -- starting nodes ---------------------------------------------------------------

    def _spawn(self, name: str) -> None:
        node = NodeProcess(name, self.topology.endpoint(name), self.run_dir / f"{name}.log")
        self.nodes[name] = node
        read_end, write_end = os.pipe()
        command = [
            sys.executable, "-m", "daemon",
            "--topology", self.topology.path, "--node", name,
            "--run-dir", str(self.run_dir), "--notify-fd", str(write_end),
        ]
        try:
            with open(node.log, "ab") as log:
                node.proc = subprocess.Popen(
                    command, pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, env=child_env(), process_group=0,
                )
        except OSError as exc:
            os.close(read_end)
            self.progress(node.fail(f"node {name}: cannot start {sys.executable}: {exc}"))
            return
        finally:
            os.close(write_end)  # the node holds the only write end: its exit means EOF
        os.set_blocking(read_end, False)
        node.notify, node.pid, node.alive = read_end, node.proc.pid, True
        node.create_time = create_time(node.pid)
        self.by_pid[node.pid] = node
        self.log.info("node %s: started pid %d, log %s", name, node.pid, node.log)

    def _wait_ready(self, deadline: float) -> bool:
        """Read the notify pipes until every node has spoken, one failed, or time is up."""
        while True:
            waiting = {n.notify: n for n in self.nodes.values() if n.notify is not None}
            if not waiting or any(n.state == "failed" for n in self.nodes.values()):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                for node in waiting.values():
                    self.progress(node.fail(f"node {node.name}: not ready after {start_timeout(len(self.nodes)):.0f} s; see {node.log}"))
                break
            readable, _, _ = select.select([self._wakeup_r, *waiting], [], [], left)
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
        for node in self.nodes.values():
            if node.error:
                self.log.error("%s", node.error)
        return all(n.state == "ready" for n in self.nodes.values())

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
        if line:
            self.progress(node.heard(line))
            if node.state == "ready":
                self.log.info("node %s: ready at %s", node.name, node.endpoint)
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
        node = self.by_pid.get(pid)
        if node is None:
            self.log.info("reaped adopted orphan pid %d (%s)", pid, describe_exit(code))
            return
        was_ready = node.state == "ready"
        node.reaped(code, self.stopping)
        if was_ready and not self.stopping:
            self.log.error("node %s (pid %d) died: %s; restart policy: none", node.name, pid, describe_exit(code))
            self._write_record()
        else:
            self.log.info("node %s (pid %d): %s", node.name, pid, describe_exit(code))

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
        """Refuse to start over a live supervisor of the same cluster; else take the folder."""
        other = rundir.read_pid(self.run_dir)
        if other is not None and other != os.getpid() and rundir.is_running(self.name):
            raise UserError(f"cluster {self.name} is already running (supervisor pid {other}); "
                            f"stop it with `ctl stop -t {self.topology.path}`")
        rundir.write_pid(self.run_dir, os.getpid())
        self._write_record()

    def _write_record(self) -> None:
        me = os.getpid()
        rundir.write_json_atomic(self.run_dir / rundir.CLUSTER_FILE, {
            "cluster": self.name,
            "topology": self.topology.path,
            "run_dir": str(self.run_dir),
            "state": self.state,
            "restart_policy": "none",
            "started_at": self.started_at,
            "supervisor": {
                "pid": me,
                "create_time": create_time(me),
                "log": str(self.run_dir / rundir.SUPERVISOR_LOG),
            },
            "nodes": {name: node.record() for name, node in self.nodes.items()},
            "remote_nodes": [n for n in self.topology.names if n not in self.nodes] if self.nodes else [],
        })

    def _open_log(self) -> None:
        handler = logging.FileHandler(self.run_dir / rundir.SUPERVISOR_LOG)
        handler.setFormatter(logging.Formatter(f"%(asctime)s supervisor[{os.getpid()}] %(levelname)s %(message)s"))
        self.log.addHandler(handler)
        self.log.setLevel(logging.INFO)
        self.log.propagate = False

    def _close_log(self) -> None:
        for handler in list(self.log.handlers):
            self.log.removeHandler(handler)
            handler.close()


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
    args = parser.parse_args(argv)
    progress = notify_fd_progress(args.notify_fd) if args.notify_fd is not None else print
    try:
        topology = load(os.path.abspath(args.topology))
        return Supervisor(topology, Path(args.run_dir).absolute(), progress).run()
    except (TopologyError, UserError) as exc:
        print(f"supervisor: error: {exc}", file=sys.stderr)
        progress(f"error {exc}")
        progress("failed 0")
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
