"""Plain-text output shared by the wave commands: the spanning tree of an echo snapshot.

``ctl top`` has its own renderer (colour, bars, history); this one is for scripts and
terminals without a screen: one line per node, indented along the wave's spanning tree.
"""

from __future__ import annotations

import json
import sys


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def tree_order(nodes: list[dict]) -> list[tuple[str, dict]]:
    """(prefix, node) pairs in depth-first order of the father pointers."""
    by_father: dict = {}
    for n in nodes:
        by_father.setdefault(n["father"], []).append(n)
    out: list[tuple[str, dict]] = []

    def walk(n: dict, prefix: str, last: bool, root: bool) -> None:
        out.append(("" if root else prefix + ("└─ " if last else "├─ "), n))
        kids = by_father.get(n["name"], [])
        for i, k in enumerate(kids):
            walk(k, "" if root else prefix + ("   " if last else "│  "), i == len(kids) - 1, False)

    for r in by_father.get(None, []):
        walk(r, "", True, True)
    return out


def format_tree(snapshot: dict) -> list[str]:
    rows = tree_order(snapshot["nodes"])
    width = max((len(p) + len(n["name"]) for p, n in rows), default=4)
    lines = [f"{'node':<{width}}  cpus  run  queue   done  load/cpu   cpu%  also from"]
    for prefix, n in rows:
        extra = [p for p in n.get("parents", []) if p != n["father"]]
        cpu = n.get("cpu_percent")
        lines.append(
            f"{prefix + n['name']:<{width}}  {n['cpus']:>4}  {n['running']:>3}  {n['queued']:>5}  {n['done']:>5}"
            f"  {n['load']:>8.2f}  {'-' if cpu is None else format(cpu, '.0f'):>5}  {', '.join(extra)}"
        )
    return lines
