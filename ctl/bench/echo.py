"""Echo latency over real daemons against the floor, same shape, same pacing, same run.

For each size N: the floor (:class:`ctl.bench.floor.Floor`, a raw pyzmq relay tree of
the same balanced shape, one process per node) and a real cluster (``ctl start`` of the
same tree, 2 cpus a node, balancing off) — one for each ``per_process`` (``[cluster]
nodes_per_process``: 1, a process per node, or several nodes per process,
daemon/node.py NodeHost) — each measured for ``waves`` waves with ``gap`` seconds
between them. A cluster wave is timed as the operator sees it: its start message to its result
(``elapsed_ms``, process start-up excluded), checked for N entries; a wave that does
not come back counts as lost. ``client="ctl"`` runs every wave as a new ``ctl echo
--json`` process, as a user does (the latency is still the wave's own, from its JSON).
With ``load``, every CPU slot of every node is then made busy (burners under
SCHED_IDLE) and both are measured again. The yardstick is the floor's p50 in the same
run: ratio = p50 / floor p50 (the target, BENCHMARKS.md: at most 2).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from ctl.bench.cluster import BenchError, ROOT, Cluster, shaped_toml, with_per_process
from ctl.bench.floor import Floor


def stats(lat: list[float]) -> dict:
    if not lat:
        return {"p50_ms": None, "p90_ms": None, "min_ms": None}
    s = sorted(lat)
    return {"p50_ms": round(statistics.median(s), 3), "p90_ms": round(s[int(len(s) * 0.9)], 3), "min_ms": round(s[0], 3)}


def cluster_waves(cluster: Cluster, count: int, gap: float, client: str,
                  progress=lambda line: None) -> tuple[list[float], int]:
    """(latencies in ms, lost waves). A first wave, not counted, lets the nodes connect
    to their neighbours (the floor's tree is connected before its first wave too)."""
    from daemon.operator import Operator, WaveTimeout

    n = len(cluster.topology.names)
    lat, lost = [], 0
    if client == "ctl":
        def ctl_echo():
            return subprocess.run([sys.executable, "-m", "ctl", "echo", "--json", "-t", cluster.path],
                                  env=cluster.env, cwd=ROOT, capture_output=True, text=True, timeout=120)

        ctl_echo()  # the nodes connect to their neighbours on the first wave: not timed, as below
        for _ in range(count):
            time.sleep(gap)
            r = ctl_echo()
            if r.returncode:
                lost += 1
                progress(f"echo: a wave was lost: {r.stdout.strip()[-300:]} {r.stderr.strip()[-300:]}")
                continue
            snap = json.loads(r.stdout)
            if len(snap["nodes"]) != n:
                raise BenchError(f"echo: {len(snap['nodes'])} of {n} entries")
            lat.append(snap["elapsed_ms"])
        return lat, lost
    with Operator(cluster.topology, timeout=max(5.0, n / 50), run_dir=cluster.run_dir) as op:
        op.echo()  # connect
        for _ in range(count):
            if gap:
                time.sleep(gap)
            try:
                snap = op.echo()
            except WaveTimeout as exc:
                lost += 1
                progress(f"echo: a wave was lost: {exc}")
                continue
            if len(snap["nodes"]) != n:
                raise BenchError(f"echo: {len(snap['nodes'])} of {n} entries")
            lat.append(snap["elapsed_ms"])
    return lat, lost


def load_cluster(cluster: Cluster) -> int:
    """Every slot of every node busy with long tasks; returns the busy slots seen."""
    from daemon.operator import Operator

    with Operator(cluster.topology, timeout=30.0, run_dir=cluster.run_dir) as op:
        for name in cluster.topology.names:
            op.submit(name, cluster.topology.node(name).cpus * 3, 600.0)
        time.sleep(1.5)
        return sum(n["running"] for n in op.echo()["nodes"])


def case_name(what: str, per_process: int) -> str:
    return what if per_process == 1 else f"{what}, {per_process} nodes per process"


def measure(n: int, shape: str = "balanced", fanout: int = 2, waves: int = 200, gap: float = 0.0,
            load: bool = False, client: str = "operator", progress=lambda line: None,
            per_process: tuple[int, ...] = (1,)) -> list[dict]:
    rows = []

    def row(case: str, lat: list[float], lost: int, floor_p50: float | None, k: int = 1, **extra) -> dict:
        r = {"case": case, "nodes": n, "shape": shape, "fanout": fanout, "waves": len(lat) + lost, "gap_s": gap,
             "client": client, "nodes_per_process": k, **stats(lat), "floor_p50_ms": floor_p50, "lost": lost, **extra}
        r["ratio"] = round(r["p50_ms"] / floor_p50, 3) if floor_p50 and r["p50_ms"] else None
        rows.append(r)
        return r

    load_avg = os.getloadavg()[0]
    progress(f"echo: floor, {n} nodes, {waves} waves")
    with Floor(n, fanout if shape == "balanced" else 2) as floor:
        floor_idle = row("floor: raw pyzmq relay tree, idle", floor.waves(waves, gap), 0, None)["p50_ms"]
        floor_busy = None
        for k in per_process:
            progress(f"echo: cluster of {n} nodes, {k} per process, starting")
            with Cluster(with_per_process(shaped_toml(n, shape, fanout, cpus=2), k)) as cluster:
                progress(f"echo: {n} nodes up in {cluster.start_s:.1f} s; {waves} waves")
                lat, lost = cluster_waves(cluster, waves, gap, client, progress)
                row(case_name("echo, idle", k), lat, lost, floor_idle, k, start_s=round(cluster.start_s, 2),
                    load_avg=round(load_avg, 2))
                if load:
                    busy = load_cluster(cluster)
                    progress(f"echo: {busy} busy slots on {os.cpu_count()} cores; floor and cluster again")
                    if floor_busy is None:  # measured once, beside the first loaded cluster
                        floor_busy = row("floor: raw pyzmq relay tree, loaded", floor.waves(waves, gap), 0, None)["p50_ms"]
                    lat, lost = cluster_waves(cluster, waves, gap, client, progress)
                    row(case_name("echo, every slot busy", k), lat, lost, floor_busy, k, busy_slots=busy)
    return rows


def run(sizes: list[int], shape: str = "balanced", fanout: int = 2, waves: int = 200, gap: float = 0.0,
        load: bool = False, client: str = "operator", progress=lambda line: None,
        per_process: tuple[int, ...] = (1,)) -> dict:
    rows = []
    for n in sizes:
        rows += measure(n, shape, fanout, waves if n <= 200 else max(5, waves // 10), gap, load, client, progress,
                        per_process)
    main = next(r for r in rows if r["case"].startswith("echo, idle"))
    return {"bench": "echo", "p50_ms": main["p50_ms"], "floor_p50_ms": main["floor_p50_ms"], "ratio": main["ratio"],
            "cores": os.cpu_count(), "python": sys.version.split()[0], "rows": rows}
