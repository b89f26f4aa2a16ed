"""``ctl start TOPOLOGY [--foreground] [--insecure] [--record] [--json]``: start a cluster; return once every node is ready.
``ctl start NODE... [-t CLUSTER] [--json]``: start nodes of the running cluster again.

TOPOLOGY is a topology file, or the name of a shipped one (``ctl start seed``).

Which one is meant: one argument that is an existing file, a shipped topology's name or
looks like a path (holds ``/`` or ends in ``.toml``) starts a cluster; anything else —
several names, a name that is neither, or any names with ``-t CLUSTER`` — are nodes of
the running cluster (``-t``, ``ECHOFINN_CLUSTER``, else the one running). ``-t`` settles it when a node shares its name with a file or a
shipped topology. Starting nodes goes through the cluster's supervisor, as
``ctl restart NODE`` does (ctl restart --help): a node stopped by ``ctl stop NODE`` or
left FATAL gets a new process, which recovers its queue from its journal; a node
already running is left as it is. It returns once each is RUNNING (answering); exit 1
naming a node that is unknown (listing the cluster's nodes) or did not start.

Starting a cluster:

1. Loads the topology (a bad file: exit 2, nothing started). ``security = "none"`` with a
   node on a non-loopback host is refused (exit 2) unless ``--insecure`` is given.
2. Refuses a cluster that is already running (exit 1, naming its supervisor pid).
3. Bind-tests the two ports of every node that runs on this host: a taken port fails the
   start before any process exists (exit 1), naming the node and the port, and what
   holds it when that is a node of one of your clusters (cluster and node).
4. Makes sure the run directory holds the cluster's CURVE keys (RUN_DIR/keys): when
   every node runs here, missing ones are created; otherwise they must come from
   ``ctl keygen``. Keys already there must be this cluster's, of one set (their keyring
   says so): keys of another cluster, a folder mixing two sets or keys without a keyring
   are refused (exit 1), naming the file and how to start afresh.
5. Starts the cluster's supervisor in the background (its own session; its output goes
   to RUN_DIR/supervisor.log), follows its progress (``starting 8 nodes … 8/8 ready``)
   and returns once every node is ready.
6. Prints the endpoints and the run directory. On failure it prints each node's error,
   waits for the supervisor to stop what it started, and checks by pid that no process
   of the cluster is left (killing, by pid, any that is).

``--foreground`` runs the supervisor inside this process instead: the cluster lives until
Ctrl-C or SIGTERM, which stop every node. ``--record`` makes every node record its steps
for ``--trace`` and for ``ctl sim replay``, as ``[cluster] record = true`` in the file
does. ``--json`` prints
``{"cluster", "run_dir", "supervisor", "nodes": [{"name", "pid", "endpoint"}]}``.
"""

# How it works: the supervisor runs as ``python -m daemon.supervisor --topology FILE
# --run-dir DIR --notify-fd FD`` and writes progress lines to the pipe FD (``starting N``,
# ``ready NODE PID ENDPOINT``, ``error MESSAGE``, ``running PID`` or ``failed N``;
# daemon/supervisor.py); the keys are daemon/security.py's; --record is passed on to
# the supervisor, which passes it to every node (daemon/trace/recorder.py).

from __future__ import annotations

ORDER = 10
HELP = "start a cluster's node daemons and return when every node is ready; or start stopped nodes of the running one"
DESCRIPTION = __doc__

SUPERVISOR_EXIT_WAIT = 10.0  # seconds for a failed supervisor to stop its nodes and exit
PROGRESS_SLACK = 10.0  # beyond the supervisor's own start deadline, before we give up on it
ERRORS_SHOWN = 5  # node errors quoted when a start fails (the rest are counted)


def add_arguments(p):
    from ctl.common import add_json_option

    from ctl.shipped import help_text

    p.add_argument("targets", nargs="+", metavar="TOPOLOGY | NODE",
                   help=help_text("the cluster's topology file") + "; or nodes of the running cluster to start again "
                        "(one argument that is a file or a shipped name starts a cluster; -t makes them nodes)")
    p.add_argument("-t", "--topology", metavar="CLUSTER",
                   help="the running cluster whose nodes to start (default: $ECHOFINN_CLUSTER, else the one running); "
                        "with -t, every argument is a node")
    p.add_argument("--foreground", action="store_true",
                   help="run the supervisor in this process; Ctrl-C or SIGTERM stops the cluster")
    p.add_argument("--insecure", action="store_true",
                   help='allow security = "none" for nodes on non-loopback hosts (anyone on the network can then command them)')
    p.add_argument("--record", action="store_true",
                   help="every node records its steps for `--trace` (as [cluster] record = true does)")
    add_json_option(p)


def run(args) -> int:
    nodes = node_targets(args)
    if nodes:
        from ctl.nodecontrol import run as act

        return act(args, "start", nodes)
    args.topology = args.targets[0]
    return start_cluster(args)


def node_targets(args) -> list[str]:
    """The nodes to start, or [] when the arguments name a topology (module text)."""
    import os

    from ctl.shipped import shipped_path
    from daemon.errors import BadInput

    targets = args.targets
    one = targets[0]
    if not args.topology and len(targets) == 1 and (
            os.path.lexists(one) or shipped_path(one) or "/" in one or one.endswith(".toml")):
        return []  # a cluster (a path that does not exist is said so by the loader)
    cluster_only = [o for o, on in (("--foreground", args.foreground), ("--insecure", args.insecure),
                                    ("--record", args.record)) if on]
    if cluster_only:
        raise BadInput(f"{', '.join(cluster_only)} belong to starting a cluster, and "
                       f"{' '.join(targets)} {'is' if len(targets) == 1 else 'are'} not a topology file or a shipped "
                       f"topology's name: as node names, they start nodes of the running cluster")
    if not args.topology:
        from ctl.common import NoCluster, chosen

        try:
            chosen(args)
        except NoCluster:
            from ctl.shipped import shipped_names

            raise BadInput(f"{' '.join(targets)}: no such topology file or shipped topology "
                           f"({', '.join(shipped_names())}), and no cluster runs whose nodes these could be") from None
    return list(targets)


def start_cluster(args) -> int:
    from daemon import rundir, security
    from daemon.errors import UserError
    from daemon.cluster.hosts import local_nodes
    from daemon.topology import load, recording

    from ctl.shipped import topology_path

    topology = load(topology_path(args.topology))
    if args.record:
        topology = recording(topology)
    security.check_mode(topology, args.insecure)
    name = topology.cluster.name
    pid = rundir.supervisor_pid(name)
    if pid is not None:
        raise UserError(f"cluster {name} is already running (supervisor pid {pid}); "
                        f"stop it with `ctl stop -t {args.topology}`")
    nodes = local_nodes(topology)
    if not nodes:
        hosts = ", ".join(sorted({n.host for n in topology.nodes}))
        raise UserError(f"{topology.path}: no node of cluster {name} runs on this host (hosts: {hosts})")
    _refuse_unrecorded(topology, nodes)
    check_ports(topology, nodes)
    run_dir = rundir.cluster_dir(name, create=True)
    if topology.cluster.security == security.CURVE:
        security.ensure_keys(run_dir, topology, nodes)
    view = StartView(topology, run_dir, args.json)
    if args.foreground:
        return _foreground(topology, run_dir, view)
    return _detached(topology, run_dir, view)


def _refuse_unrecorded(topology, nodes: list[str]) -> None:
    """Refuse to start beside this cluster's own processes that its record no longer
    names (its run directory moved away or damaged): they hold the ports."""
    from daemon import rundir
    from daemon.errors import UserError
    from daemon.orphans import by_ports

    found = by_ports(topology, nodes)
    if found:
        _, problem = rundir.usable_record(topology.cluster.name)
        pids = ", ".join(f"{f.role} {f.name + ' ' if f.name else ''}pid {f.proc.pid}" for f in found)
        raise UserError(f"cluster {topology.cluster.name} is already running without a usable record "
                        f"({problem or 'its supervisor pid is not recorded'}): {pids}; "
                        f"stop it with `ctl stop -t {topology.path}`")


def check_ports(topology, nodes: list[str]) -> None:
    """Bind each node's two ports (its inbox's and its operator socket's) the way ZeroMQ
    will (SO_REUSEADDR); UserError naming the first node and port that is taken or cannot
    be bound."""
    import errno
    import socket

    from daemon.errors import UserError

    for name in nodes:
        node = topology.node(name)
        for what, port, endpoint, field in (
                ("port", node.port, topology.endpoint(name), "the port"),
                ("operator port", topology.operator_port(name), topology.operator_endpoint(name),
                 "its operator_port (or [cluster] operator_port_offset)")):
            try:
                family, kind, proto, _, address = socket.getaddrinfo(node.host, port, 0, socket.SOCK_STREAM)[0]
                with socket.socket(family, kind, proto) as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    from ctl.clusters import port_holder

                    holder = port_holder(node.host, port)
                    if holder is not None:
                        words, cluster = holder
                        raise UserError(f"node {name}: {what} {port} ({endpoint}) is already in use by {words}; "
                                        f"stop that cluster (`ctl stop -t {cluster}`) or change {field} "
                                        f"in {topology.path}") from None
                    raise UserError(f"node {name}: {what} {port} ({endpoint}) is already in use; "
                                    f"stop what holds it or change {field} in {topology.path}") from None
                reason = exc.strerror or str(exc)
                raise UserError(f"node {name}: {what} {port} ({endpoint}) cannot be bound: {reason}") from None


class StartView:
    """Turns the supervisor's progress lines into what the user sees.

    Progress goes to stderr (one line rewritten in place on a terminal), the result to
    stdout, so ``--json`` output stays clean.
    """

    def __init__(self, topology, run_dir, as_json: bool):
        import sys

        self.topology = topology
        self.run_dir = run_dir
        self.as_json = as_json
        self.err = sys.stderr
        self.live = self.err.isatty()
        self.total = 0
        self.ready: list[dict] = []
        self.errors: list[str] = []
        self.supervisor: int | None = None
        self.outcome: str | None = None  # "running" or "failed"

    def line(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        if word == "starting":
            self.total = int(rest)
        elif word == "ready":
            name, pid, endpoint = rest.split(" ", 2)
            self.ready.append({"name": name, "pid": int(pid), "endpoint": endpoint})
        elif word == "error":
            self._end_live_line()
            self.errors.append(rest)
            print(f"error: {rest}", file=self.err, flush=True)
        elif word in ("running", "failed"):
            self.outcome = word
            if word == "running":
                self.supervisor = int(rest)
        self._show_count(final=self.outcome is not None)
        if self.outcome == "running":
            self._show_result()

    def _count(self) -> str:
        return f"starting {self.total} nodes … {len(self.ready)}/{self.total} ready"

    def _show_count(self, final: bool) -> None:
        if self.total == 0:
            return
        if self.live:
            self.err.write("\r" + self._count() + ("\n" if final else ""))
            self.err.flush()
        elif final:
            print(self._count(), file=self.err, flush=True)

    def _end_live_line(self) -> None:
        if self.live and self.total:
            self.err.write("\n")

    def _show_result(self) -> None:
        from ctl.output import print_json

        nodes = sorted(self.ready, key=lambda n: self.topology.index(n["name"]))
        if self.as_json:
            print_json({"cluster": self.topology.cluster.name, "run_dir": str(self.run_dir),
                        "supervisor": self.supervisor, "nodes": nodes})
            return
        width = max(len(n["name"]) for n in nodes)
        print(f"cluster {self.topology.cluster.name} is running: supervisor pid {self.supervisor}, "
              f"run directory {self.run_dir}")
        for n in nodes:
            print(f"  {n['name']:<{width}}  pid {n['pid']:<7}  {n['endpoint']}")
        print(f"stop it with `ctl stop -t {self.topology.path}`", flush=True)

    def failure(self):
        from daemon.errors import UserError

        shown = self.errors[:ERRORS_SHOWN]
        more = len(self.errors) - len(shown)
        reasons = "; ".join(shown) + (f"; and {more} more" if more else "")
        reasons = reasons or "the supervisor exited without a word; see its log"
        return UserError(f"cluster {self.topology.cluster.name} did not start: {reasons} "
                         f"(logs in {self.run_dir}); nothing of it is left running")


def _foreground(topology, run_dir, view: StartView) -> int:
    from daemon.cluster.supervisor import Supervisor

    supervisor = Supervisor(topology, run_dir, progress=view.line)
    if not view.as_json:
        print("running in the foreground: Ctrl-C stops the cluster", flush=True)
    if supervisor.run() != 0:
        raise view.failure()
    if not view.as_json:
        print(f"cluster {topology.cluster.name} stopped", flush=True)
    return 0


def _detached(topology, run_dir, view: StartView) -> int:
    import os
    import subprocess
    import sys

    from daemon import rundir
    from daemon.lifecycle import child_env
    from daemon.cluster.supervisor import start_timeout

    read_end, write_end = os.pipe()
    command = [
        sys.executable, "-m", "daemon.supervisor", "--topology", topology.path,
        "--run-dir", str(run_dir), "--notify-fd", str(write_end), *(["--record"] if topology.cluster.record else []),
    ]
    try:
        with open(run_dir / rundir.SUPERVISOR_LOG, "ab") as log:
            supervisor = subprocess.Popen(
                command, pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, env=child_env(), cwd="/",
            )
    finally:
        os.close(write_end)
    deadline = start_timeout(len(topology.names)) + PROGRESS_SLACK
    try:
        _follow(read_end, deadline, view)
    except KeyboardInterrupt:
        _give_up(supervisor, view, stop_it=True)  # it runs in its own session: tell it
        raise
    finally:
        os.close(read_end)
    if view.outcome == "running":
        return 0
    # After "failed" the supervisor stops its nodes and exits by itself; silence or a
    # closed pipe without an outcome means it hangs or died: stop it.
    _give_up(supervisor, view, stop_it=view.outcome != "failed")
    raise view.failure()


def _follow(fd: int, timeout: float, view: StartView) -> None:
    """Feed the supervisor's progress lines to ``view`` until it closes the pipe or time is up."""
    import os
    import select
    import time

    deadline = time.monotonic() + timeout
    pending = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            view.errors.append(f"no word from the supervisor in {timeout:.0f} s")
            return
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            view.line(line.decode("utf-8", "replace"))


def _give_up(supervisor, view: StartView, stop_it: bool) -> None:
    """Make sure nothing of a failed start is left: the supervisor stops its nodes (asked
    by SIGTERM if ``stop_it``) and exits; if it does not, it is killed by pid, and so is
    any node it leaves behind."""
    import os
    import signal
    import subprocess

    from daemon import rundir
    from daemon.lifecycle import is_alive

    if stop_it:
        supervisor.send_signal(signal.SIGTERM)
    try:
        supervisor.wait(SUPERVISOR_EXIT_WAIT)
    except subprocess.TimeoutExpired:
        supervisor.kill()
        supervisor.wait()
    record = rundir.usable_record(view.topology.cluster.name)[0]
    if record is None or record.supervisor.pid != supervisor.pid:
        return  # it never took the run directory (say, another start won the race)
    for name, node in sorted(record.nodes.items()):
        if is_alive(node.pid, node.create_time, ("--node", name)):
            os.kill(node.pid, signal.SIGKILL)
            view.errors.append(f"node {name} (pid {node.pid}) outlived its supervisor: killed")
    rundir.remove_pid(view.run_dir)
