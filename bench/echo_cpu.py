"""Where an echo wave's CPU goes: the cluster's node processes against the floor's relays.

    python bench/echo_cpu.py [--nodes 31] [--waves 600] [--security curve,none] [--per-process 1,8]
                             [--record on,off]

Starts the floor (ctl/bench/floor.py: a raw pyzmq relay tree, one forked process per
node) and then a real cluster of the same balanced tree (``ctl start``, by
ctl/bench/cluster.py), runs back-to-back echo waves over each, and reads every process's
CPU time per thread before and after: the main threads (Python, the receive and send
calls) apart from the others (libzmq's I/O thread, where CURVE encrypts; the ZAP
handler). Prints CPU milliseconds per wave for each, and the waves' p50 in the same run.
``--per-process`` measures a cluster for each number of nodes per daemon process
(``[cluster] nodes_per_process``; ARCHITECTURE.md, "Nodes per process"), ``--record`` one
with the flight recorder on and one with it off (``[cluster] record``; give ``on,off,on,off``
to alternate them on a noisy machine).
On 2 cores a wave over 31 processes is limited by the CPU they need between them, not by
the path's length: this says which part of a node to make cheaper (BENCHMARKS.md, "Where
a wave's time goes").
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psutil  # noqa: E402

from ctl.bench.cluster import Cluster, shaped_toml, with_per_process  # noqa: E402
from ctl.bench.echo import cluster_waves  # noqa: E402
from ctl.bench.floor import Floor  # noqa: E402


def thread_times(procs: list[psutil.Process]) -> dict[tuple[int, int], float]:
    times = {}
    for p in procs:
        try:
            for t in p.threads():
                times[(p.pid, t.id)] = t.user_time + t.system_time
        except psutil.Error:
            pass
    return times


def split(before: dict, after: dict, waves: int) -> tuple[float, float]:
    """(main threads, other threads) CPU ms per wave."""
    main = sum(v - before.get(k, 0.0) for k, v in after.items() if k[0] == k[1])
    other = sum(v - before.get(k, 0.0) for k, v in after.items() if k[0] != k[1])
    return main / waves * 1e3, other / waves * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=31)
    ap.add_argument("--waves", type=int, default=600)
    ap.add_argument("--security", default="curve,none", help="cluster modes to measure, in order (default curve,none)")
    ap.add_argument("--per-process", default="1", help="nodes per daemon process, a cluster for each (default 1)")
    ap.add_argument("--record", default="off", help="the flight recorder on or off, a cluster for each (default off, "
                    "as a cluster is by default)")
    args = ap.parse_args()
    rows = []
    with Floor(args.nodes, 2) as floor:
        procs = [psutil.Process(p.pid) for p in floor.procs]
        floor.waves(20)
        before = thread_times(procs)
        lat = floor.waves(args.waves)
        rows.append(("floor: raw pyzmq relay tree", statistics.median(lat), *split(before, thread_times(procs), args.waves)))
    for mode, k, rec in [(m, int(k), r) for m in args.security.split(",") for k in args.per_process.split(",")
                         for r in args.record.split(",")]:
        text = with_per_process(shaped_toml(args.nodes, "balanced", 2, cpus=2), k)
        text = text.replace('name = "bench"', f'name = "bench"\nsecurity = "{mode}"\nrecord = {str(rec == "on").lower()}', 1)
        with Cluster(text) as cluster:
            procs = cluster.node_processes()
            cluster_waves(cluster, 20, 0, "operator")
            before = thread_times(procs)
            lat, lost = cluster_waves(cluster, args.waves, 0, "operator")
            if lost:
                print(f"cluster ({mode}): {lost} waves lost", file=sys.stderr)
            case = f"cluster, security {mode}" + (f", {k} per process" if k > 1 else "") + f", recorder {rec}"
            rows.append((case, statistics.median(lat), *split(before, thread_times(procs), args.waves)))
    floor_p50 = rows[0][1]
    print(f"{args.nodes} nodes, {args.waves} waves back to back; CPU ms per wave over all the tree's processes")
    print(f"{'case':<45} {'p50 ms':>7} {'/ floor':>7} {'main ms':>8} {'other ms':>9} {'total ms':>9}")
    for case, p50, main_ms, other_ms in rows:
        print(f"{case:<45} {p50:7.2f} {p50 / floor_p50:7.2f} {main_ms:8.2f} {other_ms:9.2f} {main_ms + other_ms:9.2f}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
