"""The supervisor: starts one cluster's node daemon processes on this host, watches them, stops them.

``python -m daemon.supervisor --topology FILE --run-dir DIR [--notify-fd FD] [--record]``
(daemon/supervisor.py, the entry point), started detached by ``ctl start``; ``ctl start
--foreground`` runs :class:`Supervisor` in-process, and every rank of an MPI launch runs
one (daemon/mpi.py). ``--record`` (``ctl start --record``) turns every node's flight
recorder on, as ``[cluster] record = true`` does; the processes it starts (or restarts)
get it too.

Theory of operation (ARCHITECTURE.md, "Processes"):

- It supervises processes, not nodes: the topology's nodes whose host is this one
  (daemon/cluster/hosts.py), in file order, in runs of ``[cluster] nodes_per_process``
  (default 1), each run served by one node daemon process (daemon/node.py ``NodeHost``).
  Each process is a :class:`daemon.cluster.process.SupervisedProcess`, whose state
  machine and restart policy live in daemon/cluster/process.py; this module turns what
  happens — a ready line, a child reaped, a timer due, a stop signal — into its events.
- Lifetimes nest. Each process is forked from the supervisor (daemon/cluster/spawn.py; a
  fresh interpreter with ``ECHOFINN_SPAWN=exec``)
  and arms PR_SET_PDEATHSIG and checks its parent once a second, so it dies with the
  supervisor even if the supervisor is SIGKILLed; burners die with their node the same
  way. The supervisor is also a *child subreaper* (prctl(2)): a burner orphaned by a
  killed node becomes its child and is reaped here, not left to the machine's init.
- Readiness is said, not guessed: each process gets the write end of a pipe
  (``--notify-fd``) and writes one line once its sockets are bound and its nodes join
  every new wave (a restarted process a second later: daemon/node.py ``ReadyLine``),
  ``ready PID ENDPOINT...`` (an endpoint per node) or ``error MESSAGE``, then closes it.
  So RUNNING means reachable. End of file without a line means the process died first;
  silence past the deadline means it hangs. Either way the start fails, the other
  processes are stopped and the exit status is non-zero.
- One ``poll`` loop reads the signal pipe and the notify pipes (daemon/cluster/fds.py),
  with the nearest timer as its timeout. Children are reaped on SIGCHLD with
  ``waitpid(-1, WNOHANG)``, never by polling, and signalled by pid only while unreaped
  (daemon/cluster/children.py). The loop never waits on a node: every wait
  is a timer in that ``poll``, and balancing rounds run on a thread of their own, on
  their clock and whenever a node asks (daemon/cluster/balancer.py).
- Restarts: a process that exits without being asked is a crash; the restart policy
  says BACKOFF (restarted after a delay, with the same arguments, so its nodes find their
  journals in the run directory) or FATAL. A restart that does not say ready within
  ``start_timeout(1)`` is killed and counts as a crash. Each change is written to
  ``cluster.json`` (daemon/cluster/record.py) at once.
- The run directory is kept as ``ctl`` needs it (daemon/cluster/runfolder.py).
- One node at a time: ``ctl stop|start|restart NODE...`` writes a request into the run
  directory and sends SIGUSR1 (daemon/cluster/control.py); the loop takes the signal
  like SIGCHLD, validates the request and acts on whole processes (a process serving
  several nodes is acted on only when every one of them is named), replying at once:
  a stop sends SIGTERM and sets a SIGKILL timer ``STOP_GRACE`` away (STOPPING, then
  STOPPED once reaped, never restarted by the policy), a start forks as a restart does
  (the node recovers from its journal), a restart is a stop whose reaping starts it.
- Stop (SIGTERM, SIGINT, SIGHUP): SIGTERM every process by pid, wait up to
  ``STOP_GRACE`` seconds (a second stop signal ends the wait), SIGKILL the survivors by
  pid, reap everything, record it in ``cluster.json``, remove the pid file. Nothing is
  ever killed by name.
- Whoever started the supervisor follows its progress through :data:`Progress` lines:
  ``starting N``, ``ready NODE PID ENDPOINT``, ``error MESSAGE``, then ``running PID``
  or ``failed N``. Detached, they go to ``--notify-fd``; in-process, to a callable.

The module is over 400 lines (about 60 of them this text) because it is one event loop:
start, serve, stop, the ready lines and what a reaped exit means share the processes'
pipes, timers and states, and split apart they would only pass them back and forth.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from daemon import rundir, security
from daemon.cluster import control
from daemon.cluster.balancer import Balancer
from daemon.cluster.children import Children
from daemon.cluster.fds import CONTROL_SIGNAL, STOP_SIGNALS, SignalPipe, raise_open_files_limit, readable_fds, why_not
from daemon.cluster.hosts import local_nodes
from daemon.cluster.process import ProcessState, RestartPolicy, SupervisedProcess, describe_exit
from daemon.cluster.record import ClusterRecord, ClusterState, NodeEntry, RestartEntry, SupervisorEntry
from daemon.cluster.runfolder import RunFolder
from daemon.cluster.spawn import clear_journals, start_process
from daemon.errors import UserError
from daemon.lifecycle import become_subreaper, create_time
from daemon.topology import Topology

START_TIMEOUT = 15.0  # seconds for every node to say ready ...
START_TIMEOUT_PER_NODE = 0.2  # ... plus this much per node: each imports pyzmq on 2 cores
STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL
NOTIFY_LIMIT = 4096  # bytes a process may write on its notify pipe
RECORD_CHECK = 1.0  # seconds between checks that the run directory still holds our record
BALANCER_JOIN = 0.5  # seconds a stop waits for a balancing round in progress

Progress = Callable[[str], None]  # receives one progress line, without the newline


def start_timeout(nodes: int) -> float:
    """Seconds a start of ``nodes`` nodes may take before it counts as failed."""
    return START_TIMEOUT + START_TIMEOUT_PER_NODE * nodes


class Supervisor:
    """Runs one cluster's local nodes from start to stop. Use it from the main thread
    (signal handlers and the processes' death signal need it)."""

    def __init__(
        self, topology: Topology, run_dir: Path, progress: Progress | None = None, nodes: list[str] | None = None
    ):
        """``nodes``: the nodes to run, by name (default: :func:`local_nodes`, those whose
        host is this one). daemon/mpi.py gives each rank an explicit share."""
        if topology.path is None:
            raise UserError(f"cluster {topology.cluster.name}: the supervisor needs a topology file the nodes can read")
        self.topology = topology
        self.name = topology.cluster.name
        self.run_dir = Path(run_dir)
        self.progress = progress or (lambda line: None)
        self.node_names = None if nodes is None else list(nodes)
        self.policy = RestartPolicy.of(topology.cluster)
        self.started_at = time.time()
        self.stopped_at: float | None = None  # when it stopped or failed: `ctl` says "stopped since"
        self.state = ClusterState.STARTING
        self.stopping = False
        self.process_of: dict[str, SupervisedProcess] = {}  # node name -> the process serving it
        self.children = Children()  # the processes by pid, until reaped
        self.log = logging.getLogger(f"echofinn.supervisor.{self.name}")
        self.signals = SignalPipe()
        self.folder = RunFolder(
            self.run_dir, self.name, self.log, self.record, lambda: self.stopping, topology.cluster, self.members_of
        )
        self._balancer: Balancer | None = None  # balancing rounds, on their own thread

    def members_of(self, name: str) -> tuple[str, ...]:
        """The nodes of the process that serves node ``name`` (none if it is not ours)."""
        process = self.process_of.get(name)
        return process.names if process is not None else ()

    @property
    def processes(self) -> list[SupervisedProcess]:
        """Each supervised process once (the nodes it serves share it), in start order."""
        return list(dict.fromkeys(self.process_of.values()))

    def groups(self, names: list[str]) -> list[tuple[str, ...]]:
        """``names`` in runs of ``[cluster] nodes_per_process``, in file order: the nodes
        each process serves."""
        k = self.topology.cluster.nodes_per_process
        return [tuple(names[i : i + k]) for i in range(0, len(names), k)]

    # -- the whole life ----------------------------------------------------------------

    def run(self) -> int:
        """Start the processes, serve until a stop signal, stop them. Returns the exit
        status: 0 after a requested stop, 1 if a node could not start. Raises UserError,
        leaving everything as it was, if the cluster is already running."""
        self.folder.open()
        ok = False
        try:
            self.folder.claim(self.topology.path)
            self.signals.catch()
            try:
                ok = self.start()
                if ok:
                    self.serve()
            finally:
                if self._balancer is not None:
                    self._balancer.close(BALANCER_JOIN)
                self.stop()
                self.signals.release()
                self.folder.release()
                self.log.info("supervisor pid %d exits", os.getpid())
        finally:
            self.folder.close_log()
        return 0 if ok else 1

    def start(self) -> bool:
        names = local_nodes(self.topology) if self.node_names is None else self.node_names
        remote = [n for n in self.topology.names if n not in names]
        if remote:
            self.log.info("%d nodes are on other hosts, left to their supervisors: %s", len(remote), ", ".join(remote))
        if not names:
            hosts = sorted({n.host for n in self.topology.nodes})
            self.progress(
                f"error cluster {self.name}: no node runs on this host "
                f"(hosts in {self.topology.path}: {', '.join(hosts)})"
            )
            self.progress("failed 0")
            return False
        if self.topology.cluster.security == security.CURVE:
            try:  # `ctl start` has made them; a supervisor started by hand makes them here
                security.ensure_keys(self.run_dir, self.topology, names)
                self.folder.key_files = security.read_files(self.run_dir)  # to write again if the folder goes
                # once here, inherited by forked nodes
                security.preload(self.run_dir, self.topology, self.folder.key_files)
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
                break  # the start fails: the processes started so far are stopped below
        self.folder.write()
        ok = self._wait_ready(time.monotonic() + start_timeout(len(names)))
        if not ok:
            failed = [p for p in self.processes if p.error]
            for process in failed:
                process.gave_up()
            self.state = ClusterState.FAILED
            self.progress(f"failed {len(failed)}")
            return False
        self.state = ClusterState.RUNNING
        self.folder.write()
        rundir.set_current(self.name, self.run_dir.parent)
        self.log.info("cluster %s: %d nodes ready", self.name, len(names))
        self.progress(f"running {os.getpid()}")
        return True

    def serve(self) -> None:
        """Reap, restart and balance until a stop signal arrives.

        One ``poll`` over the signal pipe and the notify pipes of restarting processes;
        its timeout is the nearest timer (a restart due, a restarting process's ready
        deadline, the run directory check). Nothing here waits on a node: balancing
        rounds run on the :class:`Balancer`'s thread, which keeps their clock."""
        if self.topology.cluster.rebalance_interval > 0:
            self.balance()  # the balancer's thread keeps its own clock and hears the nodes' asks
        next_check = time.monotonic() + RECORD_CHECK
        while True:
            timers = [next_check]
            timers += [p.restart_at for p in self.processes if p.restart_at is not None]
            timers += [p.ready_by for p in self.processes if p.ready_by is not None]
            timers += [p.stop_by for p in self.processes if p.stop_by is not None]
            timeout = max(0.0, min(timers) - time.monotonic())
            starting = {p.notify: p for p in self.processes if p.notify is not None}
            readable = readable_fds([*starting, self.signals.fd], timeout)
            for fd in readable:  # notify pipes first: a process's last words come before its SIGCHLD
                if fd == self.signals.fd:
                    if self._take_signals():
                        return
                elif starting[fd].notify == fd:
                    self._read_notify(starting[fd])
            now = time.monotonic()
            for process in self.processes:
                if process.restart_at is not None and now >= process.restart_at:
                    self._restart(process)
                elif process.ready_by is not None and now >= process.ready_by and process.alive:
                    process.ready_by = None
                    process.fail(
                        f"node {process.name}: not ready {start_timeout(1):.0f} s after its restart; see {process.log}"
                    )
                    self.children.signal([process], signal.SIGKILL)  # reaped on SIGCHLD: a crash
                elif process.stop_by is not None and now >= process.stop_by and process.alive:
                    process.stop_by = None
                    self.log.warning(
                        "node %s (pid %s): not stopped after %.0f s, SIGKILL",
                        " ".join(process.names),
                        process.pid,
                        STOP_GRACE,
                    )
                    self.children.signal([process], signal.SIGKILL)  # reaped on SIGCHLD: then STOPPED
            if now >= next_check:
                self.folder.check()
                next_check = now + RECORD_CHECK

    def stop(self) -> None:
        """SIGTERM every process, SIGKILL what is left after the grace period, reap all."""
        self.stopping = True
        if self.state != ClusterState.FAILED:
            self.state = ClusterState.STOPPING
        for process in self.processes:
            if process.notify is not None:
                os.close(process.notify)
                process.notify = None
        live = [p for p in self.processes if p.alive]
        if live:
            self.log.info(
                "stopping %d nodes in %d processes: SIGTERM %s",
                sum(len(p.names) for p in live),
                len(live),
                " ".join(f"{','.join(p.names)}={p.pid}" for p in live),
            )
        self.children.signal(live, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while any(p.alive for p in self.processes):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            readable = readable_fds([self.signals.fd], left)
            if readable and self._take_signals():
                deadline = time.monotonic()  # asked twice: no more grace
        survivors = [p for p in self.processes if p.alive]
        if survivors:
            self.log.warning(
                "not stopped after %.0f s, SIGKILL: %s",
                STOP_GRACE,
                " ".join(f"{','.join(p.names)}={p.pid}" for p in survivors),
            )
            self.children.signal(survivors, signal.SIGKILL)
            for process in survivors:
                self._wait_for(process)
        self._reap_adopted()
        for process in self.processes:
            process.stopped()  # one in BACKOFF is not started again; a FATAL one stays FATAL
        if self.state != ClusterState.FAILED:
            self.state = ClusterState.STOPPED
        self.stopped_at = time.time()
        self.folder.write()

    def balance(self) -> None:
        """Start the balancer's thread: rounds every ``rebalance_interval`` seconds and
        whenever a node asks (daemon/cluster/balancer.py)."""
        if self._balancer is None:
            self._balancer = Balancer(self.topology, self.log, self.run_dir)
        self._balancer.start()

    # -- the record ---------------------------------------------------------------------

    def record(self) -> ClusterRecord:
        """``cluster.json`` as it is now (daemon/cluster/record.py)."""
        me = os.getpid()
        policy = self.policy
        return ClusterRecord(
            cluster=self.name,
            topology=self.topology.path,
            run_dir=str(self.run_dir),
            state=self.state,
            restart_policy=policy.restart,
            restart=RestartEntry(
                policy=policy.restart,
                first_backoff=policy.first_backoff,
                backoff_max=policy.backoff_max,
                max_crashes=policy.max_crashes,
                window=policy.window,
            ),
            started_at=self.started_at,
            stopped_at=self.stopped_at,
            supervisor=SupervisorEntry(
                pid=me, create_time=create_time(me), log=str(self.run_dir / rundir.SUPERVISOR_LOG)
            ),
            nodes={name: NodeEntry.of(process, name) for name, process in self.process_of.items()},
            remote_nodes=[n for n in self.topology.names if n not in self.process_of] if self.process_of else [],
        )

    # -- starting processes -------------------------------------------------------------

    def _spawn(self, names: tuple[str, ...]) -> bool:
        """Start the process of nodes ``names`` (one, or a NodeHost's); False (it failed,
        saying why) if no process could be made."""
        name = names[0]
        process = self.process_of.get(name) or SupervisedProcess(
            {n: self.topology.endpoint(n) for n in names},
            self.run_dir / f"{name}.log",
            {n: self.topology.operator_endpoint(n) for n in names},
        )
        process.spawned()
        for member in names:
            self.process_of[member] = process
        try:
            read_end, write_end = os.pipe()
        except OSError as exc:
            self.progress(process.fail(f"node {name}: cannot start: {why_not(exc)}"))
            return False
        try:
            process.popen = start_process(self.topology, names, self.run_dir, write_end, process.log)
        except OSError as exc:
            os.close(read_end)
            self.progress(process.fail(f"node {name}: cannot start {sys.executable}: {why_not(exc)}"))
            return False
        finally:
            os.close(write_end)  # the process holds the only write end: its exit means EOF
        os.set_blocking(read_end, False)
        process.notify, process.pid, process.alive = read_end, process.popen.pid, True
        process.create_time = create_time(process.pid)
        self.children.add(process)
        self.log.info("node %s: started pid %d, log %s", " ".join(names), process.pid, process.log)
        return True

    def _wait_ready(self, deadline: float) -> bool:
        """Read the notify pipes until every process has spoken, one failed, or time is up."""
        while True:
            waiting = {p.notify: p for p in self.processes if p.notify is not None}
            if not waiting or any(p.error for p in self.processes):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                for process in waiting.values():
                    self.progress(
                        process.fail(
                            f"node {process.name}: not ready after "
                            f"{start_timeout(len(self.process_of)):.0f} s; see {process.log}"
                        )
                    )
                break
            readable = readable_fds([self.signals.fd, *waiting], left)
            for fd in readable:
                if fd == self.signals.fd:
                    if self._take_signals():
                        self.log.info("stop requested while starting")
                        for process in waiting.values():
                            process.fail(f"node {process.name}: start interrupted by a stop request")
                        self.progress("error start interrupted by a stop request")
                        return False
                else:
                    self._read_notify(waiting[fd])
        for process in self.processes:
            if process.error:
                self.log.error("%s", process.error)
        return all(p.state == ProcessState.RUNNING for p in self.processes)

    def _read_notify(self, process: SupervisedProcess) -> None:
        if process.notify is None:
            return  # its pipe is closed already
        try:
            chunk = os.read(process.notify, NOTIFY_LIMIT)
        except BlockingIOError:
            return
        process.said += chunk
        if chunk and b"\n" not in process.said and len(process.said) < NOTIFY_LIMIT:
            return  # wait for the rest of the line
        os.close(process.notify)
        process.notify = None
        line = process.said.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        restarting = self.state == ClusterState.RUNNING
        if line:
            self.progress(process.heard(line))
            if process.state == ProcessState.RUNNING:
                self.log.info(
                    "node %s: ready at %s%s",
                    process.name,
                    process.endpoint,
                    f" (pid {process.pid}, restart {process.restarts})" if restarting else "",
                )
                if restarting:
                    self.folder.write()
            elif restarting:
                self.log.error("%s", process.error)
                self.children.signal([process], signal.SIGKILL)  # it exits anyway; reaped as a crash
            return
        if restarting:  # end of file without a word: it died before binding; reaped as a crash
            if process.alive:
                process.error = f"node {process.name}: exited before it was ready; see {process.log}"
            return
        # End of file without a word: the process died before binding. Its exit status, if
        # it is already reaped, makes the message.
        if process.alive:
            self._wait_for(process, timeout=1.0)
        how = describe_exit(process.exit_status) if not process.alive else "closed its notify pipe"
        self.progress(process.fail(f"node {process.name}: exited before it was ready ({how}); see {process.log}"))

    # -- reaping --------------------------------------------------------------------------

    def _reap(self) -> None:
        """Collect every child that has exited (on SIGCHLD): processes and adopted orphans."""
        for pid, code in self.children.exited():
            self._reaped(pid, code)

    def _reaped(self, pid: int, code: int) -> None:
        process = self.children.pop(pid)
        if process is None:
            self.log.info("reaped adopted orphan pid %d (%s)", pid, describe_exit(code))
            return
        process.alive = False  # reaped: from here on its pid is never signalled
        if process.state == ProcessState.STOPPING:  # the operator stopped it: not a crash
            process.reaped(code)
            process.last_exit = f"{process.last_exit} (stopped by the operator)"
            process.exited()
            self.log.info("node %s (pid %d): %s", " ".join(process.names), pid, process.last_exit)
            if process.start_after_stop and not self.stopping and self.state == ClusterState.RUNNING:
                process.start_after_stop = False
                if process.operator_start():
                    self._restart(process)
                    return  # _restart wrote the record
            self.folder.write()
            return
        if not self.stopping and self.state == ClusterState.RUNNING:
            for _ in range(4):  # a restarting process's last words, if still in its pipe
                if process.notify is None:
                    break
                self._read_notify(process)
            if process.notify is not None:
                os.close(process.notify)
                process.notify = None
        process.reaped(code)
        if self.stopping or self.state != ClusterState.RUNNING:  # asked to stop, or the cluster's own start
            self.log.info("node %s (pid %d): %s", process.name, pid, describe_exit(code))
            return
        self._crashed(process)

    def _crashed(self, process: SupervisedProcess) -> None:
        """A process exited without being asked (or a restart failed): BACKOFF or FATAL,
        as the restart policy says (daemon/cluster/process.py)."""
        what = "exited" if process.state == ProcessState.RUNNING else "failed to start"
        delay = process.crashed(time.monotonic(), self.policy)
        if delay is not None:
            self.log.error(
                "node %s (pid %s) %s: %s; restart in %.1f s", process.name, process.pid, what, process.last_exit, delay
            )
        elif self.policy.restart == "never":
            self.log.error(
                "node %s (pid %s) %s: %s; restart policy never: FATAL",
                process.name,
                process.pid,
                what,
                process.last_exit,
            )
        else:
            self.log.error(
                "node %s (pid %s) %s: %s; %d crashes within %g s: FATAL, not restarted again",
                process.name,
                process.pid,
                what,
                process.last_exit,
                len(process.crashes),
                self.policy.window,
            )
        self.folder.write()

    def _restart(self, process: SupervisedProcess) -> None:
        """Start a process again: one in BACKOFF whose delay is over, or one the operator
        starts (from the serve loop: never from a signal handler)."""
        process.restarts += 1
        self.folder.ensure()
        self.folder.restore_keys()  # the restarted process reads its key pair there
        self._spawn(process.names)
        if not process.alive:  # could not even fork: one more crash
            process.last_exit = process.error
            self._crashed(process)
            return
        process.ready_by = time.monotonic() + start_timeout(1)
        self.folder.write()

    def _wait_for(self, process: SupervisedProcess, timeout: float | None = None) -> None:
        """Block until ``process`` is reaped (after SIGKILL, or an EOF that means it is exiting)."""
        code = Children.wait(process, timeout)
        if code is not None and process.pid is not None:
            self._reaped(process.pid, code)

    def _reap_adopted(self) -> None:
        """Reap what is left: our processes, then the orphans adopted as subreaper."""
        self._reap()
        for pid, code in self.children.adopted():
            self._reaped(pid, code)

    # -- the operator's requests (daemon/cluster/control.py) ----------------------------

    def _requests(self) -> None:
        """Answer every request waiting in the run directory (on SIGUSR1)."""
        for reply, data, refused in control.pending(self.run_dir):
            if refused is not None or data is None:
                refused = refused or "an empty request"
                self.log.warning("operator request refused: %s", refused)
                control.send_reply(reply, {"ok": False, "error": refused})
                continue
            try:
                action, names = control.parse_request(data)
                answer = {"ok": True, "nodes": self._act(action, names)}
            except control.BadRequest as exc:
                self.log.warning("operator request refused: %s", exc)
                answer = {"ok": False, "error": str(exc)}
            control.send_reply(reply, answer)

    def _act(self, action: str, names: list[str]) -> dict:
        """Stop, start or restart the processes of nodes ``names`` (whole processes only);
        returns, per node, the state it was in, the state it is in now and the restart
        count its record shows once its new process runs. Never waits: ``ctl`` does."""
        if self.stopping or self.state != ClusterState.RUNNING:
            raise control.BadRequest(f"cluster {self.name} is {self.state}: its nodes are not taken one at a time now")
        unknown = [n for n in names if n not in self.process_of]
        if unknown:
            elsewhere = [n for n in unknown if n in self.topology]
            here = ", ".join(self.process_of)
            if elsewhere and len(elsewhere) == len(unknown):
                raise control.BadRequest(
                    f"node {', '.join(elsewhere)} of cluster {self.name} is not supervised on this host "
                    f"(its nodes here: {here})"
                )
            raise control.BadRequest(
                f"no node {', '.join(n for n in unknown if n not in elsewhere)} in cluster {self.name} "
                f"(its nodes: {', '.join(self.topology.names)})"
            )
        processes = list(dict.fromkeys(self.process_of[n] for n in names))
        for process in processes:
            left_out = [n for n in process.names if n not in names]
            if left_out:
                named = [n for n in process.names if n in names]
                raise control.BadRequest(
                    f"node {', '.join(named)} shares its process with {', '.join(left_out)} "
                    f"([cluster] nodes_per_process = {self.topology.cluster.nodes_per_process}): "
                    f"one process cannot {action} part of its nodes; name them all: "
                    f"`ctl {action} {' '.join(process.names)}`"
                )
        result = {}
        for process in processes:
            was = process.state
            if action in ("stop", "restart"):
                self._operator_stop(process)
            if action in ("start", "restart") and process.operator_start():
                self._restart(process)  # counts the restart, forks, sets its ready deadline
            expected = process.restarts + (1 if process.start_after_stop else 0)
            # begins "node NAME...:" so that it is copied into each node's log (daemon/logs.py NodeLines)
            self.log.info("node %s: operator %s, %s -> %s", " ".join(process.names), action, was, process.state)
            for name in process.names:
                result[name] = {"was": str(was), "now": str(process.state), "restarts": expected}
        self.folder.write()
        return result

    def _operator_stop(self, process: SupervisedProcess) -> None:
        """SIGTERM the process (SIGKILL at its ``stop_by``); it is STOPPED once reaped."""
        if not process.operator_stop(time.monotonic(), STOP_GRACE):
            return
        if process.notify is not None:  # a ready line from now on would mean nothing
            os.close(process.notify)
            process.notify = None
        if process.alive:
            self.children.signal([process], signal.SIGTERM)
            self.children.signal([process], signal.SIGCONT)  # a stopped process acts on it too

    def _take_signals(self) -> bool:
        """Handle the signals that arrived; True if one of them asks to stop."""
        stop = False
        for signum in self.signals.take():
            if signum == signal.SIGCHLD:
                self._reap()
            elif signum == CONTROL_SIGNAL:
                self._requests()
            elif signum in STOP_SIGNALS:
                self.log.info("%s received", signal.Signals(signum).name)
                stop = True
        return stop
