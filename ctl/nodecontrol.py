"""``ctl stop|start|restart NODE...``: one node at a time, through the cluster's supervisor.

The request goes to the supervisor of the chosen cluster (``-t``, ``ECHOFINN_CLUSTER``,
else the one running) through its run directory (daemon/cluster/control.py: a request
file and SIGUSR1). The supervisor validates it — every node known and supervised on
this host, whole processes only (with ``[cluster] nodes_per_process`` above 1, name
every node of a process) — and acts at once; an error comes back as its sentence (exit
1). Then this module follows ``cluster.json`` until each node is where it was asked to
be, printing each as it gets there (stderr):

- stop: STOPPED (or FATAL, if it was) and its process gone; the supervisor's restart
  policy leaves it alone until ``ctl start NODE``;
- start, restart: RUNNING — its new process said ready, so it answers — with the
  restart count the supervisor promised (a restart is a new process; the node recovers
  its queue from its journal). A node that ends FATAL, or crashes into BACKOFF, has
  failed (exit 1, naming it and how its process ended).

``--json``: ``{"cluster", "action", "ok", "nodes": [{"name", "was", "state", "pid",
"restarts", "last_exit", "ok"}], "error"}``.
"""

from __future__ import annotations

import sys
import time

WAIT_SLACK = 5.0  # seconds beyond the supervisor's own deadlines
POLL = 0.1  # seconds between reads of cluster.json


def add_node_arguments(p, verb: str) -> None:
    from ctl.common import add_json_option, add_topology_option

    p.add_argument("nodes", nargs="+", metavar="NODE", help=f"the nodes to {verb} (names from `ctl status`)")
    add_topology_option(p)
    add_json_option(p)


def run(args, action: str, nodes: list[str]) -> int:
    from ctl.common import chosen
    from ctl.output import print_json
    from daemon import rundir
    from daemon.cluster import control
    from daemon.errors import UserError

    choice = chosen(args)
    name = choice.name
    run_dir = rundir.cluster_dir(name)
    pid = rundir.supervisor_pid(name)
    if pid is None:
        raise UserError(f"cluster {name} ({choice.why}) is not running on this host: its nodes cannot be "
                        f"taken one at a time (`ctl status -t {name}` says more)")
    try:
        reply = control.ask(run_dir, pid, action, nodes)
    except TimeoutError as exc:
        raise UserError(f"cluster {name}: {exc}; see {run_dir / rundir.SUPERVISOR_LOG}") from None
    except ProcessLookupError:
        raise UserError(f"cluster {name}: its supervisor (pid {pid}) exited just now") from None
    if not reply.get("ok"):
        error = reply.get("error") or "the supervisor refused the request"
        error = error if f"cluster {name}" in error else f"cluster {name}: {error}"
        if args.json:
            print_json({"cluster": name, "action": action, "ok": False, "nodes": [], "error": error})
            return 1
        raise UserError(error)
    promised: dict = reply["nodes"]
    rows = follow(name, action, promised, quiet=args.json)
    ok = all(r["ok"] for r in rows)
    failed = [r for r in rows if not r["ok"]]
    error = "; ".join(f"node {r['name']} {r['error']}" for r in failed) or None
    if args.json:
        print_json({"cluster": name, "action": action, "ok": ok, "nodes": rows, "error": error})
        return 0 if ok else 1
    for r in rows:
        if r["ok"]:
            pid_text = f", pid {r['pid']}" if r["state"] == "RUNNING" else ""
            print(f"node {r['name']}: {r['state']}{pid_text} (was {r['was']})")
    if failed:
        raise UserError(f"cluster {name}: {error}")
    return 0


def follow(cluster: str, action: str, promised: dict, quiet: bool) -> list[dict]:
    """Read ``cluster.json`` until every node of ``promised`` (the supervisor's reply) is
    where ``action`` wants it, has failed, or time is up; one row per node."""
    from daemon import rundir
    from daemon.cluster.process import ProcessState as S
    from daemon.cluster.supervisor import STOP_GRACE, start_timeout
    from daemon.lifecycle import is_alive

    wait = WAIT_SLACK + (STOP_GRACE if action != "start" else 0) + (start_timeout(1) if action != "stop" else 0)
    deadline = time.monotonic() + wait
    done: dict[str, dict] = {}
    if not quiet:
        print(f"{_verb(action)} {', '.join(promised)} …", file=sys.stderr, flush=True)
    while True:
        record = rundir.usable_record(cluster)[0]
        entries = record.nodes if record is not None else {}
        for node, want in promised.items():
            if node in done:
                continue
            entry = entries.get(node)
            if entry is None:
                continue
            row = {"name": node, "was": want["was"], "state": str(entry.state), "pid": entry.pid,
                   "restarts": entry.restarts, "last_exit": entry.last_exit, "ok": True, "error": None}
            alive = is_alive(entry.pid, entry.create_time, ("--node", node))
            if action == "stop":
                if entry.state in (S.STOPPED, S.FATAL) and not alive:
                    done[node] = row
            elif entry.restarts >= want["restarts"]:
                if entry.state == S.RUNNING:
                    done[node] = row
                elif entry.state in (S.FATAL, S.BACKOFF):
                    row.update(ok=False, error=f"did not start: {entry.state}"
                               + (f" ({entry.last_exit})" if entry.last_exit else "") + f"; see {entry.log}")
                    done[node] = row
            if node in done and not quiet:
                print(f"  {node}: {row['state']}", file=sys.stderr, flush=True)
        if len(done) == len(promised):
            break
        if time.monotonic() >= deadline:
            for node, want in promised.items():
                if node not in done:
                    entry = entries.get(node)
                    state = str(entry.state) if entry is not None else "not in the record"
                    done[node] = {"name": node, "was": want["was"], "state": state,
                                  "pid": entry.pid if entry else None, "restarts": entry.restarts if entry else None,
                                  "last_exit": entry.last_exit if entry else None, "ok": False,
                                  "error": f"is still {state} after {wait:.0f} s"}
            break
        time.sleep(POLL)
    return [done[node] for node in promised]


def _verb(action: str) -> str:
    return {"stop": "stopping", "start": "starting", "restart": "restarting"}[action]
