"""``ctl status [-t TOPOLOGY.toml] [--timeout S] [--json] [--watch [--interval S]]``: is the cluster running, and is each node alive?

``--watch`` redraws the table every ``--interval`` seconds (default 2) until Ctrl-C,
which ends it with exit 0; on a terminal each frame replaces the last, otherwise the
frames follow one another, each under a line with its time. A cluster that stops while
watched is said in the frame, and the watch goes on.

Reads the run directory (``cluster.json``): the supervisor's pid, run directory and
uptime, then one row per node — name, pid, endpoint (its inbox, for nodes), operator
endpoint (where ``ctl`` connects), alive (the pid is a live process,
not a zombie, with the recorded start time and ``--node NAME`` on its command line),
the round trip of a ZeroMQ ping to its operator socket, the supervisor's state for it (STARTING,
RUNNING, BACKOFF: waiting to be restarted, FATAL: crashed too often, not restarted
again, STOPPING and STOPPED: stopped by ``ctl stop NODE``, not restarted until ``ctl
start NODE``), how many times it was restarted and how its last process ended.
A refused handshake — a node whose neighbour refuses its key, or that refuses the
operator key — is said under the table with both names, e.g. ``subserviate refused
pical's key (a stale or foreign key)``, and its PING cell says ``refused key``.
Exit 1 if the cluster is not running, any node is not RUNNING, alive and answering
its ping, or a key is refused: a node whose process lives but does not answer
(SIGSTOPped, stuck) is named "alive but not answering". A cluster this host proves
stopped or never started is said in the words every command uses.

A missing or damaged ``cluster.json`` is said as such, with the cluster's processes found
by the ports of the topology (verified to be this cluster's node daemons and their
supervisor, by user and command line) and how to stop them; exit 1.

``--json``: ``{"cluster", "run_dir", "running", "state", "supervisor": {"pid", "started_at",
"uptime_s", "log", "restart_policy"}, "nodes": [{"name", "pid", "endpoint",
"operator_endpoint", "alive", "ping_ms", "refused", "state", "since", "restarts",
"last_exit"}], "refused": [[who refused, whose key], ...], "remote_nodes": [...],
"ping_timeout"}``; ``ping_ms`` is a ZeroMQ round trip to the node's operator socket
(null when it does not answer within ``--timeout``, default 1 s). Without a usable record: ``{"cluster", "run_dir", "running",
"state": "unrecorded", "problem", "processes": [{"role", "name", "pid"}], "nodes": []}``.
"""

from __future__ import annotations

ORDER = 12
HELP = "show the cluster's supervisor and whether each node daemon is alive"
DESCRIPTION = __doc__

# The text table: (heading, key of a node row). PING is a ZeroMQ round trip through the
# node's operator socket (daemon.operator.Operator.ping): a live pid that does not answer
# is stuck, or refuses the operator's key.
COLUMNS = [("NODE", "name"), ("PID", "pid"), ("ENDPOINT", "endpoint"), ("OPERATOR", "operator_endpoint"),
           ("ALIVE", "alive"), ("PING", "ping_ms"), ("STATE", "state"), ("RESTARTS", "restarts"), ("LAST EXIT", "last_exit")]


def add_arguments(p):
    from ctl.argtypes import seconds
    from ctl.common import add_json_option, add_topology_option

    add_topology_option(p)
    p.add_argument("--timeout", type=seconds("--timeout", 600), default=1.0, metavar="SECONDS",
                   help="how long to wait for each node's ping (default 1)")
    add_json_option(p)
    p.add_argument("--watch", action="store_true", help="redraw the table every --interval seconds until Ctrl-C (exit 0)")
    p.add_argument("--interval", type=seconds("--interval", 3600), default=2.0, metavar="SECONDS",
                   help="--watch: seconds between frames (default 2)")


def run(args) -> int:
    if args.watch:
        return watch(args)
    return once(args)


def watch(args) -> int:
    """Frames of :func:`once` every ``args.interval`` seconds until Ctrl-C (exit 0)."""
    import sys
    import time

    from daemon.errors import BadInput, UserError

    if args.json:
        raise BadInput("--watch redraws the text table; --json prints one document (run it again for another)")
    live = sys.stdout.isatty()
    try:
        while True:
            began = time.monotonic()
            stamp = time.strftime("%H:%M:%S")
            if live:
                sys.stdout.write("\x1b[H\x1b[2J")  # home, clear: the frame replaces the last
            print(f"every {args.interval:g} s, Ctrl-C ends: ctl status   {stamp}")
            try:
                once(args)
            except UserError as exc:
                print(exc)
            print(flush=True)
            time.sleep(max(0.0, args.interval - (time.monotonic() - began)))
    except KeyboardInterrupt:
        return 0


def once(args) -> int:
    import time

    from ctl.common import cluster_down, resolve_topology
    from ctl.output import print_json
    from daemon import rundir
    from daemon.cluster.record import ClusterRecord
    from daemon.errors import UserError

    topology = resolve_topology(args)
    name = topology.cluster.name
    run_dir = rundir.cluster_dir(name)
    record, problem = rundir.usable_record(name)
    pid = rundir.supervisor_pid(name)
    if record is None:
        found = unrecorded(topology)
        if found or pid is not None:
            return _report_unrecorded(args, topology, run_dir, problem, found, pid)
        if problem and "missing" not in problem:
            raise UserError(f"{problem}; no process of cluster {name} holds its ports: remove {run_dir} to start afresh")
        record = ClusterRecord()
    running = pid is not None
    state = (str(record.state) if record.state else "never started") if running else _ended(record)
    started = record.started_at
    report = {
        "cluster": name,
        "run_dir": str(run_dir),
        "running": running,
        "state": state,
        "supervisor": {
            "pid": pid,
            "started_at": started,
            "uptime_s": round(time.time() - started, 1) if running and started else None,
            "log": str(run_dir / rundir.SUPERVISOR_LOG),
            "restart_policy": record.restart_policy or "none",
        },
        "nodes": node_rows(record) if running else [],
        "refused": [],
        "remote_nodes": record.remote_nodes,
        "ping_timeout": args.timeout,
    }
    if running:
        report["refused"] = _with_ping(topology, report["nodes"], args.timeout)
    healthy = running and all(_healthy(row) for row in report["nodes"]) and not report["refused"]
    if args.json:
        print_json(report)
        return 0 if healthy else 1
    if not running:
        down = cluster_down(topology)  # the words every command uses (ctl/common.py)
        raise UserError(down.text if down else f"cluster {name} is not running on this host ({state}); "
                        f"start it here with `ctl start {topology.path}`")
    _print_table(report)
    return 0 if healthy else 1


def _healthy(row: dict) -> bool:
    """RUNNING, its process alive, and answering a ping: a live pid that does not answer
    (stopped by SIGSTOP, stuck) is not a working node."""
    return row["state"] == "RUNNING" and row["alive"] and row.get("ping_ms") is not None


def unrecorded(topology) -> list:
    """This cluster's processes found by the ports of its topology (daemon.orphans)."""
    from daemon.orphans import by_ports
    from daemon.cluster.hosts import local_nodes

    return by_ports(topology, local_nodes(topology))


def _report_unrecorded(args, topology, run_dir, problem, found, pid) -> int:
    from ctl.output import print_json

    processes = [{"role": f.role, "name": f.name, "pid": f.proc.pid} for f in found]
    if pid is not None and all(p["pid"] != pid for p in processes):
        processes.insert(0, {"role": "supervisor", "name": "", "pid": pid})
    how = f"`ctl stop -t {topology.path}` stops them (found by their ports, each checked to be ours)"
    if args.json:
        print_json({"cluster": topology.cluster.name, "run_dir": str(run_dir), "running": True, "state": "unrecorded",
                    "problem": problem, "processes": processes, "how_to_stop": how, "nodes": []})
        return 1
    print(f"cluster {topology.cluster.name}: no usable record: {problem}")
    print("yet these processes of it are running:")
    for p in processes:
        print(f"  {p['role']:<10}  {p['name'] or '-':<16}  pid {p['pid']}")
    print(how)
    return 1


def node_rows(record) -> list[dict]:
    """One row per node of the record (daemon/cluster/record.py ``ClusterRecord``), in the
    supervisor's (file) order."""
    from daemon.lifecycle import is_alive

    rows = []
    for name, entry in record.nodes.items():
        rows.append({
            "name": name,
            "pid": entry.pid,
            "endpoint": entry.endpoint,
            "operator_endpoint": entry.operator_endpoint,
            "alive": is_alive(entry.pid, entry.create_time, ("--node", name)),
            "state": str(entry.state) if entry.state else None,
            "since": entry.since,
            "restarts": entry.restarts,
            "last_exit": entry.last_exit,
        })
    return rows


def _with_ping(topology, rows: list[dict], timeout: float) -> list[list[str]]:
    """Add ``ping_ms`` (None: no answer within ``timeout`` seconds) to the rows of live
    nodes, and ``refused`` to a row whose node refused the operator's handshake (or whose
    key the operator refused); returns every [who refused, whose key] the pongs and the
    operator's own handshakes report."""
    from daemon.core.snapshot import refused_keys
    from daemon.operator import Operator

    live = [row["name"] for row in rows if row["alive"] and row["name"] in topology]
    with Operator(topology, timeout=timeout) as op:
        pongs = op.ping(live) if live else {}
        own = dict(op.refused)
    for row in rows:
        pong = pongs.get(row["name"])
        row["ping_ms"] = pong["rtt_ms"] if pong else None
        row["refused"] = row["name"] in own
    pairs = refused_keys([], pongs.values())
    return [list(pair) for pair in pairs + [p for p in own.values() if p not in pairs]]


def _ended(record) -> str:
    """How a cluster that is not running ended, in a few words."""
    if record.state is None:
        return "never started here"
    if record.state.live:
        return f"its supervisor pid {record.supervisor.pid} is gone; `ctl stop` cleans up"
    return str(record.state)


def _print_table(report: dict) -> None:
    sup = report["supervisor"]
    print(f"cluster {report['cluster']}: {report['state']}, supervisor pid {sup['pid']}, "
          f"up {_duration(sup['uptime_s'])}, restart policy: {sup['restart_policy']}")
    print(f"run directory {report['run_dir']}")
    cells = [[_cell(key, row) for _, key in COLUMNS] for row in report["nodes"]]
    widths = [max([len(head)] + [len(c[i]) for c in cells]) for i, (head, _) in enumerate(COLUMNS)]
    print("  ".join(head.ljust(w) for (head, _), w in zip(COLUMNS, widths)).rstrip())
    for c in cells:
        print("  ".join(text.ljust(w) for text, w in zip(c, widths)).rstrip())
    alive = [row for row in report["nodes"] if row["alive"]]
    silent = [row["name"] for row in alive if row.get("ping_ms") is None]
    total = len(report["nodes"])
    print(f"{len(alive)}/{total} nodes alive" + (f", {len(alive) - len(silent)}/{total} answering" if silent else ""))
    from daemon.core.snapshot import refusal_text, unexplained

    for pair in report["refused"]:
        print(refusal_text(*pair))
    silent = unexplained(silent, report["refused"])
    for row in report["nodes"]:
        if row["state"] in ("STOPPED", "STOPPING"):
            print(f"node {row['name']} is {row['state']}: stopped by the operator, not restarted until "
                  f"`ctl start {row['name']}`")
        elif row["state"] != "RUNNING":
            print(f"node {row['name']} is {row['state']}" + (f" (last exit: {row['last_exit']})" if row["last_exit"] else ""))
    for name in silent:
        print(f"node {name} is alive but not answering (no pong within {report['ping_timeout']:g} s: stopped or stuck?)")
    if report["remote_nodes"]:
        print(f"on other hosts (not watched here): {', '.join(report['remote_nodes'])}")


def _cell(key: str, row: dict) -> str:
    value = row.get(key)
    if key == "alive":
        return "yes" if value else "no"
    if key == "ping_ms":
        if value is None and row.get("refused"):
            return "refused key"
        return "no answer" if value is None and row.get("alive") else "-" if value is None else f"{value:.1f} ms"
    return "-" if value is None else str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
