"""The options the commands share: which cluster (``-t/--topology``) and ``--json``.

Which cluster a command acts on is chosen per shell, never by another shell's doing
(:func:`chosen`):

1. ``-t X``, else the environment variable ``ECHOFINN_CLUSTER`` (``export
   ECHOFINN_CLUSTER=seed``: this shell and its children only). X is a topology file if
   that path exists, else the name of one of this user's clusters on this host (its run
   directory records its topology), else the name of a shipped topology
   (ctl/shipped.py); anything else is refused (exit 2) with your clusters and the
   shipped names.
2. Without a choice: the one cluster of this user that runs on this host. With two or
   more running, the command refuses (exit 1), naming them and how to choose: a cluster
   another shell starts never takes over this shell's commands.
3. With none running: the most recently started cluster (``current`` in the run
   directory), so that a stopped or crashed cluster is still said stopped, and ``ctl
   stop`` still cleans up after a killed supervisor.

Heavy imports stay inside the functions: ``ctl --help`` must be quick.

Every command that talks to a cluster finds it through :func:`resolve_cluster`: the
topology, then this host's proof that the cluster is down (``daemon.rundir.down_here``:
stopped, or never started here), said at once with exit 1 — before any key is read or
any wave waits out its timeout. Where the run directory proves nothing (nodes on other
hosts, a published MPI topology), the command goes on and the nodes' silence speaks.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from daemon.errors import UserError

CLUSTER_ENV = "ECHOFINN_CLUSTER"
NO_CLUSTER = "no cluster is running; start one with `ctl start seed` (a shipped topology) or pass -t FILE"


class NoCluster(UserError):
    """No choice made, none running, none ever started on this host."""


def add_topology_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-t", "--topology", metavar="CLUSTER",
        help=f"the cluster: a topology file, the name of one of your clusters, or a shipped topology's name "
             f"(default: ${CLUSTER_ENV}, else the one cluster running)",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


@dataclass
class Choice:
    """The cluster a command acts on: its name, its topology when the choice gave one
    (a file, a shipped name), and why it is this one (for messages)."""

    name: str
    topology: object | None
    why: str


def chosen(args) -> Choice:
    """The cluster a command acts on (module text). Raises BadInput (exit 2) for a choice
    that names nothing, UserError (exit 1) when there is nothing to act on or bare
    commands are ambiguous."""
    from daemon import rundir

    text = getattr(args, "topology", None)
    why = "-t"
    if not text and os.environ.get(CLUSTER_ENV):
        text, why = os.environ[CLUSTER_ENV], CLUSTER_ENV
    if text:
        return _named(text, why)
    from ctl.clusters import running

    live = running()
    if len(live) == 1:
        return Choice(live[0].name, None, "the one cluster running")
    if len(live) > 1:
        names = ", ".join(c.name for c in live)
        raise UserError(f"{len(live)} clusters are running ({names}); say which: `-t NAME`, or "
                        f"`export {CLUSTER_ENV}=NAME` for this shell (`ctl list` shows them)")
    name = rundir.current_cluster()
    if name is None:
        raise NoCluster(NO_CLUSTER)
    return Choice(name, None, "the most recently started")


def _named(text: str, why: str) -> Choice:
    from ctl.shipped import shipped_names, shipped_path
    from daemon import rundir
    from daemon.errors import BadInput
    from daemon.topology import load

    if os.path.lexists(text):
        topology = load(text)
        return Choice(topology.cluster.name, topology, why)
    if _is_name(text) and ((rundir.base_dir() / text / rundir.CLUSTER_FILE).exists()
                           or (rundir.base_dir() / text / rundir.PID_FILE).exists()):
        return Choice(text, None, f"named by {why}")
    found = shipped_path(text)
    if found is not None:
        topology = load(str(found))
        return Choice(topology.cluster.name, topology, why)
    from ctl.clusters import clusters

    mine = ", ".join(c.name for c in clusters()) or "none"
    raise BadInput(f"{why} {text}: no such file, no cluster of yours by that name on this host ({mine}), "
                   f"and no shipped topology of that name ({', '.join(shipped_names())})")


def _is_name(text: str) -> bool:
    return bool(text) and "/" not in text and text not in (".", "..") and not text.startswith(".")


def resolve_topology(args):
    """The topology of the cluster :func:`chosen` picks.

    Raises TopologyError (exit 2) for a bad file, UserError (exit 1) if there is no
    cluster to talk about.
    """
    from daemon import rundir
    from daemon.topology import load

    choice = chosen(args)
    if choice.topology is not None:
        return choice.topology
    name = choice.name
    record, problem = rundir.usable_record(name)
    if record is None or not record.topology:
        problem = problem or f"{rundir.cluster_dir(name) / rundir.CLUSTER_FILE} names no topology file"
        raise UserError(f"cluster {name} ({choice.why}): {problem}; pass -t TOPOLOGY.toml, "
                        f"and ctl finds the cluster's processes by the ports of its topology")
    return load(record.topology)


def cluster_down(topology):
    """This host's proof that the cluster is down (``daemon.rundir.Down``), or None. A
    cluster never started here is not down while a process of it holds its ports (its
    supervisor rewrites a removed record within a second; daemon/orphans.py)."""
    from daemon import rundir
    from daemon.cluster.hosts import local_nodes

    down = rundir.down_here(topology, lambda: local_nodes(topology))
    if down is not None and down.kind == "never-started":
        from daemon.orphans import by_ports

        if by_ports(topology, topology.names):
            return None
    return down


def resolve_cluster(args):
    """:func:`resolve_topology`, then UserError (exit 1) if this host proves the cluster
    stopped or never started: said at once, not after a timeout (module text)."""
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
