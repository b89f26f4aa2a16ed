"""Plain-text output shared by the wave commands: JSON, and an echo snapshot's spanning
tree as text.

``ctl top`` draws the same tree with colour, bars and history; both take its rows from
:func:`ctl.top.tree.tree_rows`, so the two views order and hang nodes alike.
"""

from __future__ import annotations

import json
import sys


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def format_tree(snapshot: dict, topology) -> list[str]:
    """One line per node, indented along the wave's spanning tree."""
    from ctl.top.tree import tree_rows
    from ctl.top.view import ViewState, roster_from_topology

    rows = tree_rows(snapshot, ViewState(roster=roster_from_topology(topology), interactive=False))
    cells = []
    for row in rows:
        guides = "".join("│  " if more else "   " for more in row.guides)
        if row.depth > 0:
            guides += "└─ " if row.last else "├─ "
        cells.append((guides + row.name, row))
    width = max((len(text) for text, _ in cells), default=4)
    lines = [f"{'node':<{width}}  cpus  run  queue   done  load/cpu   cpu%  also from"]
    for text, row in cells:
        n = row.node
        if n is None:  # in the topology, not in this wave's answer
            lines.append(f"{text:<{width}}  (no answer)")
            continue
        cpu = n.get("cpu_percent")
        lines.append(
            (
                f"{text:<{width}}  {n['cpus']:>4}  {n['running']:>3}  {n['queued']:>5}  {n['done']:>5}"
                f"  {n['load']:>8.2f}  {'-' if cpu is None else format(cpu, '.0f'):>5}  {', '.join(row.extra_parents)}"
            ).rstrip()
        )
    return lines
