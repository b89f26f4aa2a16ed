"""How many node daemons one machine runs: start, memory, one echo, stop, per size.

For each size N: ``ctl start`` of a balanced binary tree of N nodes (1 cpu each,
balancing off; ``per_process`` nodes in each daemon process, ``[cluster]
nodes_per_process``), timed from the command's start to its exit (every node has said
ready); each daemon process's unique memory (USS, psutil's ``memory_full_info``) once
all are up and idle, and that divided by the nodes it serves, and again after the
echoes (a node opens its links to its neighbours on its first wave); one echo wave over all N (checked: N entries) through
:class:`daemon.operator.Operator`; ``ctl stop`` timed the same way; then every process
seen (supervisor, nodes) checked gone and reaped. The yardsticks are the targets in
BENCHMARKS.md: up in 15 s, 6 MB per idle daemon, stopped in 5 s, for 1,000 nodes.
"""

from __future__ import annotations

import os
import statistics
import time

from ctl.bench.cluster import BenchError, Cluster, free_base_port, tree_toml, with_per_process

TARGET_START_S = 15.0  # for 1,000 nodes; scaled linearly for other sizes
TARGET_USS_MB = 6.0
TARGET_STOP_S = 5.0


def measure(n: int, spawn: str = "fork", progress=lambda line: None, per_process: int = 1) -> dict:
    env = dict(os.environ, ECHOFINN_SPAWN=spawn)
    progress(f"scale: starting {n} nodes ({spawn}, {per_process} per process)")
    with Cluster(with_per_process(tree_toml(n, free_base_port(n), fanout=2, cpus=1), per_process), env=env) as c:
        progress(f"scale: {n} nodes up in {c.start_s:.1f} s; measuring memory")
        nodes = c.node_processes()
        uss, rss = _memory(nodes)
        from daemon.operator import Operator

        with Operator(c.topology, timeout=max(10.0, n / 20), run_dir=c.run_dir) as op:
            op.echo()  # connects; the second wave is the one timed
            snap = op.echo()
        entries = len(snap["nodes"])
        waved, _ = _memory(nodes)  # idle again, now with its links open and a wave's code run
        progress(f"scale: echo over {entries} nodes in {snap['elapsed_ms']:.0f} ms; stopping")
    return {
        "nodes": n,
        "spawn": spawn,
        "nodes_per_process": per_process,
        "start_s": round(c.start_s, 2),
        "start_target_s": round(TARGET_START_S * n / 1000, 2),
        "uss_mb_median": round(statistics.median(uss), 2) if uss else None,
        "uss_mb_max": round(max(uss), 2) if uss else None,
        "rss_mb_median": round(statistics.median(rss), 2) if rss else None,
        "uss_target_mb": TARGET_USS_MB,
        "uss_mb_per_node": round(sum(uss) / n, 2) if uss else None,
        "uss_mb_after_echo": round(statistics.median(waved), 2) if waved else None,
        "node_processes": len(nodes),
        "echo_ms": snap["elapsed_ms"],
        "echo_entries": entries,
        "stop_s": round(c.stop_s, 2),
        "nodes_gone_s": round(c.nodes_gone_s, 2),
        "stop_target_s": round(TARGET_STOP_S * n / 1000, 2),
        "left": c.left,
        "load_before": os.getloadavg()[0],
    }


def _memory(procs) -> tuple[list[float], list[float]]:
    """(USS, RSS) in MB of each process still there."""
    uss, rss = [], []
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except Exception:  # noqa: BLE001 — a node that went away shows as missing
            continue
        uss.append(info.uss / 2**20)
        rss.append(info.rss / 2**20)
    return uss, rss


def run(sizes: list[int], spawn: str = "fork", progress=lambda line: None, per_process: int = 1) -> dict:
    rows = []
    for n in sizes:
        try:
            rows.append(measure(n, spawn, progress, per_process))
        except BenchError as exc:  # a size that does not start is a result too; go on
            progress(f"scale: {n} nodes: {exc}")
            rows.append({"nodes": n, "spawn": spawn, "nodes_per_process": per_process, "error": str(exc), "left": []})
        time.sleep(0.5)
    return {"bench": "scale", "spawn": spawn, "nodes_per_process": per_process, "rows": rows}
