"""``ctl check TOPOLOGY.toml [--json]``

Validates a topology file and prints a summary: nodes, edges, shape, sources, Finn
initiators, total cpus, initial tasks, hosts and port ranges. Sends no message: it only
reads the file. Exit 0 when the file is valid, 2 (with the error, naming the file, node
and field) when it is not.
"""

from __future__ import annotations

import argparse
import json
import sys

ORDER = 81
HELP = "validate a topology file and summarise it"
DESCRIPTION = """\
Validate a topology file and print a summary: nodes, edges, shape (tree, dag or cyclic),
sources, the Finn initiators (one node of every strongly connected component that no
edge enters: the nodes that must start a Finn wave), total cpus and port ranges.

Exit 0 when the file is valid, 2 with a message naming the file, node and field when not.

examples:
  ctl check topologies/seed.toml
  ctl check topologies/dag.toml --json
"""

NAMES_SHOWN = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ctl.shipped import help_text

    parser.add_argument("topology", metavar="TOPOLOGY", help=help_text("the topology file to check"))
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def run(args: argparse.Namespace) -> int:
    from daemon.topology import load

    from ctl.shipped import topology_path

    topology = load(topology_path(args.topology))
    summary = summarise(topology, args.topology)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(summary))
    return 0


def summarise(topology, shown_path: str) -> dict:
    """Everything ``ctl check`` reports, as plain data (the --json output)."""
    cluster = topology.cluster
    ports: dict[str, list[int]] = {}
    for node in topology.nodes:
        ports.setdefault(node.host, []).append(node.port)
    cpus = [node.cpus for node in topology.nodes]
    return {
        "path": shown_path,
        "cluster": cluster.name,
        "task_time": cluster.task_time,
        "rebalance_interval": cluster.rebalance_interval,
        "nodes": len(topology),
        "edges": topology.edge_count,
        "shape": topology.shape(),
        "sources": list(topology.sources()),
        "finn_initiators": list(topology.finn_initiators()),
        "cpus": {"total": sum(cpus), "min": min(cpus), "max": max(cpus)},
        "tasks": sum(node.tasks for node in topology.nodes),
        "ports": [{"host": host, "min": min(ps), "max": max(ps), "count": len(ps)} for host, ps in ports.items()],
    }


def render(s: dict) -> str:
    interval = f"every {s['rebalance_interval']:g} s" if s["rebalance_interval"] else "off"
    port_lines = [
        f"{p['host']}:{p['min']}" + (f"-{p['max']}" if p["max"] != p["min"] else "")
        + ("" if p["max"] - p["min"] + 1 == p["count"] else f" ({p['count']} ports, not contiguous)")
        for p in s["ports"]
    ]
    rows = [
        ("cluster", f"{s['cluster']} (task_time {s['task_time']:g} s, rebalancing {interval})"),
        ("nodes", str(s["nodes"])),
        ("edges", str(s["edges"])),
        ("shape", s["shape"]),
        ("sources", _names(s["sources"])),
        ("finn initiators", _names(s["finn_initiators"])),
        ("cpus", f"{s['cpus']['total']} in total, {s['cpus']['min']}..{s['cpus']['max']} per node"),
        ("initial tasks", str(s["tasks"])),
        ("ports", "; ".join(port_lines[:4]) + (f"; ... ({len(port_lines)} hosts)" if len(port_lines) > 4 else "")),
    ]
    width = max(len(label) for label, _ in rows)
    return f"{s['path']}: ok\n" + "".join(f"  {label:<{width}}  {value}\n" for label, value in rows)


def _names(names: list[str]) -> str:
    if not names:
        return "(none)"
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown if len(names) <= NAMES_SHOWN else f"{shown}, ... ({len(names)} in all)"
