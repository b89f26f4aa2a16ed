"""The options the commands share: which cluster (``-t/--topology``) and ``--json``.

A command that talks to a cluster takes ``-t FILE``; without it, it means the most
recently started cluster, whose topology path the run directory remembers
(``daemon.rundir``). Heavy imports stay inside the functions: ``ctl --help`` must be quick.

Every command that talks to a cluster finds it through :func:`resolve_cluster`: the
topology, then this host's proof that the cluster is down (``daemon.rundir.down_here``:
stopped, or never started here), said at once with exit 1 — before any key is read or
any wave waits out its timeout. Where the run directory proves nothing (nodes on other
hosts, a published MPI topology), the command goes on and the nodes' silence speaks.
"""

from __future__ import annotations

import argparse

NO_CLUSTER = "no cluster is running; start one with `ctl start topologies/seed.toml` or pass -t FILE"


def add_topology_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-t", "--topology", metavar="FILE",
        help="the cluster's topology file (default: the most recently started cluster)",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def resolve_topology(args):
    """The topology named by ``-t``, else the most recently started cluster's.

    Raises TopologyError (exit 2) for a bad file, UserError (exit 1) if there is no
    cluster to talk about.
    """
    from daemon import rundir
    from daemon.errors import UserError
    from daemon.topology import load

    if getattr(args, "topology", None):
        return load(args.topology)
    name = rundir.current_cluster()
    if name is None:
        raise UserError(NO_CLUSTER)
    record, problem = rundir.usable_record(name)
    if record is None or not record.get("topology"):
        problem = problem or f"{rundir.cluster_dir(name) / rundir.CLUSTER_FILE} names no topology file"
        raise UserError(f"cluster {name} (the most recently started): {problem}; pass -t TOPOLOGY.toml, "
                        f"and ctl finds the cluster's processes by the ports of its topology")
    return load(record["topology"])


def cluster_down(topology):
    """This host's proof that the cluster is down (``daemon.rundir.Down``), or None. A
    cluster never started here is not down while a process of it holds its ports (its
    supervisor rewrites a removed record within a second; daemon/orphans.py)."""
    from daemon import rundir
    from daemon.supervisor import local_nodes

    down = rundir.down_here(topology, lambda: local_nodes(topology))
    if down is not None and down.kind == "never-started":
        from daemon.orphans import by_ports

        if by_ports(topology, topology.names):
            return None
    return down


def resolve_cluster(args):
    """:func:`resolve_topology`, then UserError (exit 1) if this host proves the cluster
    stopped or never started: said at once, not after a timeout (module text)."""
    from daemon.errors import UserError

    topology = resolve_topology(args)
    down = cluster_down(topology)
    if down is not None:
        raise UserError(down.text)
    return topology


def add_trace_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trace", metavar="FILE",
        help="then fetch every node's recorded steps of the wave and write them to FILE, in the format "
             "its suffix names: .etrace/.etrace.json (the raw trace, JSON), .json (Perfetto), .shiviz, .svg, .png",
    )


def save_trace(op, path: str, wave_ids: list[str], wave: str, kind: str) -> bool:
    """Fetch the trace of ``wave_ids`` from every node through ``op`` (daemon/operator.py),
    write it to ``path`` (daemon/trace ``write``) and say so on stderr; False if some
    node did not answer (it is named)."""
    import sys

    from daemon import trace

    tr = op.trace(wave_ids, wave, kind)
    trace.write(tr, path)
    answered = len(tr["topology"]["nodes"]) - len(tr["missing"])
    print(f"trace of {kind} wave {wave}: {len(tr['steps'])} steps from {answered} nodes written to {path}",
          file=sys.stderr)
    silent = [n for n in tr["missing"] if n not in op.trace_errors]
    if silent:
        print(f"no trace from {', '.join(silent)} within {op.timeout:g} s", file=sys.stderr)
    for node, text in op.trace_errors.items():
        print(f"no trace from {node}: {text}", file=sys.stderr)
    return not tr["missing"]
