"""``ctl stop [NODE...] [-t TOPOLOGY.toml] [--json]``: stop a cluster (afterwards none of its processes exists), or only some of its nodes.

With node names, only those nodes stop, through the cluster's supervisor: each node's
process gets SIGTERM (SIGKILL after a grace period) and is left STOPPED — the restart
policy does not start it again — until ``ctl start NODE`` or ``ctl restart NODE``; its
journal stays, so its queue comes back with it. The other nodes keep serving (a wave
names a stopped node missing). It returns once every named node's process is gone;
exit 1 naming a node that is unknown (listing the cluster's nodes). With
``[cluster] nodes_per_process`` above 1, name every node of a process (the error says
which): one process cannot stop part of its nodes. ``--json`` then prints
``{"cluster", "action", "ok", "nodes": [{"name", "was", "state", "pid", "restarts",
"last_exit", "ok"}], "error"}``.

Without node names it stops the whole cluster:

Without ``-t`` (or ``ECHOFINN_CLUSTER``), the one cluster running (with several, it
asks which), else the most recently started. Before signalling anything it takes
the cluster's process tree — the supervisor, its node daemons and their burners — plus
the nodes ``cluster.json`` records (each checked by start time and command line: pids
get reused). Then it sends SIGTERM to the supervisor, by pid; the supervisor stops its
nodes (SIGTERM, then SIGKILL after a grace period) and the nodes stop their burners. It
waits until every process of that list is gone — exited *and* reaped, so no zombie is
left — and SIGKILLs, by pid, any that outstays the wait, saying so.

A cluster that is not running: ``ctl stop`` stops any node that outlived a killed
supervisor and cleans the stale pid file and record (exit 0: it did something). With
nothing at all to do — the cluster stopped cleanly, or was never started on this host —
it says so in the words every command uses and exits
1, like every other command against a cluster that is down.

A missing or damaged ``cluster.json`` does not orphan the cluster: with ``-t FILE`` its
processes are also found by the ports of the topology (the node
daemons listening there, checked to be ours by user and command line, and the
supervisor that started them) and stopped the same way. Without ``-t`` only a
supervisor named by a live pid file can be found; otherwise it says to pass ``-t``
(exit 1). The supervisor also gets a SIGCONT after its SIGTERM: a stopped
(SIGSTOPped) supervisor would never act on it.
``--json`` prints ``{"cluster", "run_dir", "was_running", "stopped": [...], "killed": [...]}``,
each process as ``{"role", "name", "pid"}``, and ``"down"`` (the text) when there was
nothing to do.
"""

from __future__ import annotations

ORDER = 90
HELP = "stop a cluster (its supervisor, node daemons and burners; no process left behind), or only the nodes named"
DESCRIPTION = __doc__

# The supervisor may be in a balancing round (a few seconds at most) before it sees the
# SIGTERM, then gives its nodes STOP_GRACE seconds.
STOP_WAIT = 12.0
KILL_WAIT = 3.0  # after SIGKILL, for the parent to reap


def add_arguments(p):
    from ctl.common import add_json_option, add_topology_option

    p.add_argument("nodes", nargs="*", metavar="NODE",
                   help="stop only these nodes, through the supervisor; the others keep running (default: the whole cluster)")
    add_topology_option(p)
    add_json_option(p)


def run(args) -> int:
    if getattr(args, "nodes", None):
        from ctl.nodecontrol import run as act

        return act(args, "stop", args.nodes)
    return stop_cluster(args)


def stop_cluster(args) -> int:
    import os
    import signal
    import time
    from dataclasses import replace

    import psutil

    from ctl.common import NoCluster, chosen
    from daemon import rundir
    from daemon.cluster.record import ClusterRecord, ClusterState
    from daemon.errors import UserError

    found = []
    try:
        choice = chosen(args)
    except NoCluster:
        raise UserError(f"no cluster was ever started on this host (none under {rundir.base_dir()}); "
                        f"nothing to stop") from None
    topology, name = choice.topology, choice.name
    run_dir = rundir.cluster_dir(name)
    record, problem = rundir.usable_record(name)
    pid = rundir.supervisor_pid(name)
    if record is None and topology is None:
        if pid is None:
            raise UserError(f"cluster {name} ({choice.why}): {problem}; if it still runs, "
                            f"`ctl stop -t TOPOLOGY.toml` finds its processes by the ports of its topology")
    elif record is None:
        from daemon.orphans import by_ports
        from daemon.cluster.hosts import local_nodes

        found = by_ports(topology, local_nodes(topology))
        if pid is None:
            pid = next((f.proc.pid for f in found if f.role == "supervisor"), None)
    members = cluster_processes(pid, record or ClusterRecord(), [f.proc for f in found])
    stale = record is not None and record.state is not None and record.state.live
    if pid is None and not members and not stale:
        return _nothing_to_stop(args, name, run_dir, topology, record)
    if pid is not None:
        for signum in (signal.SIGTERM, signal.SIGCONT):  # a stopped supervisor stops too
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
    alive = wait_gone([proc for proc, _, _ in members], STOP_WAIT)
    killed = []
    for proc in alive:
        role, label = next((r, n) for p, r, n in members if p is proc)
        try:
            proc.kill()  # psutil refuses if the pid now belongs to another process
        except psutil.NoSuchProcess:
            continue
        killed.append({"role": role, "name": label, "pid": proc.pid})
    left = wait_gone(alive, KILL_WAIT)
    if left:
        raise UserError(f"cluster {name}: could not stop " + ", ".join(_describe_left(p) for p in left))
    rundir.remove_pid(run_dir)
    if stale:
        record = rundir.usable_record(name)[0] or record  # as the supervisor left it
        # the supervisor did not live to write it
        rundir.write_record(run_dir, replace(record, state=ClusterState.STOPPED, stopped_at=time.time()))
    stopped = [{"role": role, "name": label, "pid": proc.pid} for proc, role, label in members]
    if problem and members and not args.json:
        print(f"cluster {name} had no usable record ({problem}); its processes were found "
              + ("by the ports of its topology" if found else "by its pid file"))
    _report(args, name, run_dir, pid, stopped, killed)
    return 0


def _nothing_to_stop(args, name, run_dir, topology, record) -> int:
    """No process to stop, no record to clean: say why (exit 1)."""
    from ctl.common import cluster_down
    from ctl.output import print_json
    from daemon import topology as topologies

    if topology is None and record is not None and record.topology:
        try:
            topology = topologies.load(record.topology)
        except topologies.TopologyError:
            topology = None  # the file went away: the plainer words below
    down = cluster_down(topology) if topology is not None else None
    text = down.text if down is not None else f"cluster {name} is not running on this host"
    if args.json:
        print_json({"cluster": name, "run_dir": str(run_dir), "was_running": False, "stopped": [], "killed": [],
                    "down": text})
    else:
        import sys

        print(f"nothing to stop: {text}", file=sys.stderr)
    return 1


def wait_gone(procs: list, timeout: float) -> list:
    """Wait until every process of ``procs`` is gone (exited and reaped: a zombie is
    still there); return those left after ``timeout`` seconds. One sweep over all of
    them every few milliseconds: psutil.wait_procs waits for one process at a time,
    with sleeps that add up to seconds over a thousand nodes. A process that is our own
    child (the supervisor, when ``ctl demo`` started it in this process) is reaped here:
    nobody else would, and its zombie would outlive this process."""
    import os
    import time

    def reap(proc) -> None:
        try:
            os.waitpid(proc.pid, os.WNOHANG)  # a pid not ours to wait for raises
        except ChildProcessError:
            pass

    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        for p in procs:
            reap(p)
        procs = [p for p in procs if p.is_running()]  # same pid and start time, zombie or not
        left = deadline - time.monotonic()
        if not procs or left <= 0:
            return procs
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.05)


def cluster_processes(supervisor: int | None, record, more=()) -> list:
    """(psutil.Process, role, name) for every live process of the cluster: the supervisor
    and all its descendants, any node the record names that is still alive, and the
    processes ``more`` (found by their ports) with their descendants."""
    import psutil

    from daemon.lifecycle import is_alive

    found: dict[int, tuple] = {}
    roots = list(more)
    if supervisor is not None:
        try:
            roots.append(psutil.Process(supervisor))
        except psutil.NoSuchProcess:
            pass
    for node, entry in sorted(record.nodes.items()):
        if is_alive(entry.pid, entry.create_time, ("--node", node)):
            try:
                roots.append(psutil.Process(entry.pid))
            except psutil.NoSuchProcess:
                pass
    for root in roots:
        if root.pid in found:
            continue  # a node under the supervisor: its tree is listed already (each walk reads all of /proc)
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in tree:
            if proc.pid not in found:
                found[proc.pid] = (proc, *_role(proc, supervisor))
    return [found[pid] for pid in sorted(found)]


def _role(proc, supervisor: int | None) -> tuple[str, str]:
    import psutil

    from daemon.orphans import served_nodes

    if proc.pid == supervisor:
        return "supervisor", ""
    try:
        args = proc.cmdline()
    except psutil.Error:
        return "process", ""
    node = ",".join(served_nodes(args))  # a NodeHost serves several
    if "daemon.burner" in args:
        return "burner", node
    if "daemon" in args and node:
        return "node", node
    return "process", " ".join(args[:3])


def _describe_left(proc) -> str:
    import psutil

    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            return f"pid {proc.pid} (a zombie: its parent, pid {proc.ppid()}, has not reaped it)"
    except psutil.Error:
        pass
    return f"pid {proc.pid}"


def _report(args, name, run_dir, supervisor: int | None, stopped: list, killed: list) -> None:
    from ctl.output import print_json

    if args.json:
        print_json({"cluster": name, "run_dir": str(run_dir), "was_running": supervisor is not None,
                    "stopped": stopped, "killed": killed})
        return
    count = {role: sum(1 for p in stopped if p["role"] == role) for role in ("node", "burner", "process")}
    served = sum(len(p["name"].split(",")) for p in stopped if p["role"] == "node" and p["name"])
    nodes = _plural(served, "node") + (f" in {_plural(count['node'], 'process')}" if served != count["node"] else "")
    parts = [nodes, _plural(count["burner"], "burner")] + (
        [_plural(count["process"], "other process")] if count["process"] else [])
    if supervisor is not None:
        print(f"stopped cluster {name}: supervisor pid {supervisor}, " + ", ".join(parts))
    else:
        print(f"cluster {name} is not running" + (f"; stopped what it left: {', '.join(parts)}" if stopped else ""))
    for p in killed:
        print(f"  {p['role']} {p['name']} pid {p['pid']} did not stop in time: killed (SIGKILL)")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}es" if word.endswith("s") else f"{n} {word}s"
