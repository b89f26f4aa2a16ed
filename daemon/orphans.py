"""Finding a cluster's processes without its record: by the ports of its topology.

``cluster.json`` (daemon/rundir.py) is how ``ctl`` normally finds a cluster's processes.
When it is missing (the run directory was moved away) or damaged (the wrong JSON shape),
``ctl status`` and ``ctl stop -t FILE`` still find them, never by name:

1. The node daemons: the processes listening (``psutil.net_connections``) on the TCP
   ports the topology gives its nodes on this host. Each must be one of ours before it
   counts: same user, its command line ``python -m daemon ... --topology FILE --node
   NAME`` naming this topology file and the node of that very port.
2. Their supervisor: the parent of such a node, if it is ours and its command line is a
   supervisor's (``daemon.supervisor`` or ``ctl start --foreground``).

What is found is returned as psutil processes, which refuse to signal a pid that has
since been reused (psutil checks the start time).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil



@dataclass(frozen=True)
class Found:
    """One process of the cluster: ``role`` is "supervisor" or "node"; ``name`` the node."""

    proc: psutil.Process
    role: str
    name: str = ""


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _arg(args: list[str], flag: str) -> str | None:
    try:
        return args[args.index(flag) + 1]
    except (ValueError, IndexError):
        return None


def served_nodes(args: list[str]) -> list[str]:
    """The nodes a daemon's command line names (``--node`` once, or a NodeHost's several;
    written by daemon/node.py ``node_args``)."""
    return [args[i + 1] for i in range(len(args) - 1) if args[i] == "--node"]


def _is_our_node(proc: psutil.Process, topology, name: str) -> bool:
    try:
        if proc.uids().real != os.getuid():
            return False
        args = proc.cmdline()
    except psutil.Error:
        return False
    topo = _arg(args, "--topology")
    return ("-m" in args and "daemon" in args and name in served_nodes(args)
            and topo is not None and topology.path is not None and _same_file(topo, topology.path))


def _supervisor_of(node: psutil.Process) -> psutil.Process | None:
    try:
        parent = node.parent()
        # Not the node's environment: a node forked by the supervisor (daemon/zygote.py)
        # shows the supervisor's own start-up environment in /proc. The node was verified
        # by its command line and port; its parent must be ours and run a supervisor.
        if parent is None or parent.uids().real != os.getuid():
            return None
        args = parent.cmdline()
    except psutil.Error:
        return None
    if "daemon.supervisor" in args or ("ctl" in args and "--foreground" in args):
        return parent
    return None


def by_ports(topology, names=None) -> list[Found]:
    """The verified node daemons holding the ports of ``topology``'s nodes (``names``,
    default all) on this host, then their verified supervisors; sorted by pid."""
    wanted = {topology.node(n).port: n for n in (topology.names if names is None else names)}
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return []
    found: dict[int, Found] = {}
    for conn in conns:
        if conn.status != psutil.CONN_LISTEN or conn.pid is None or conn.pid in found:
            continue
        name = wanted.get(conn.laddr.port)
        if name is None:
            continue
        try:
            proc = psutil.Process(conn.pid)
        except psutil.Error:
            continue
        if _is_our_node(proc, topology, name):
            found[proc.pid] = Found(proc, "node", name)
    for node in [f.proc for f in found.values()]:
        parent = _supervisor_of(node)
        if parent is not None and parent.pid not in found:
            found[parent.pid] = Found(parent, "supervisor")
    return [found[pid] for pid in sorted(found)]
