"""The options the commands share: which cluster (``-t/--topology``) and ``--json``.

A command that talks to a cluster takes ``-t FILE``; without it, it means the most
recently started cluster, whose topology path the run directory remembers
(``daemon.rundir``). Heavy imports stay inside the functions: ``ctl --help`` must be quick.
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


def require_running(topology) -> dict:
    """The running cluster's record (``cluster.json``); UserError if it is not running."""
    from daemon import rundir
    from daemon.errors import UserError

    name = topology.cluster.name
    if not rundir.is_running(name):
        raise UserError(f"cluster {name} is not running; start it with `ctl start {topology.path}`")
    record, _ = rundir.usable_record(name)
    return record or {}


def add_trace_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trace", metavar="FILE",
        help="then fetch every node's recorded steps of the wave and write them to FILE "
             "(.etrace or .etrace.json: the raw trace, JSON)",
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
