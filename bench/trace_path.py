"""Where an echo wave's time goes on real processes: its critical path, traced.

    python bench/trace_path.py [--nodes 31,200] [--waves 20] [--floor-waves 100] [--shape balanced]

For each size: a real cluster of a binary tree (``--shape``: balanced, the floor's
tree, or a ``ctl gen`` shape) recording its steps (``[cluster] record = true``, a process
per node, a private ECHOFINN_HOME, stopped by pid whatever
happens: ctl/bench/cluster.py). A first echo (not measured) lets the nodes connect; then
``--waves`` echoes, each fetched as a trace (``Operator.trace``, what ``ctl echo --trace``
does) and read by ``daemon.trace.report.report`` (what ``ctl trace show --json`` prints):
the critical path to the decision, its hops, and per hop the sender's handler, wire and
queue, and the receiver's handler. A hop's receiver is the next hop's sender, so each
wave's path splits into its steps' handlers (each step once: hops + 1 steps) and its
hops' wire+queue; the table shows the medians over the waves of the path, of these two
sums and of each per hop, beside the wave's time at the operator (operator to initiator
and back included) and the p50 of the floor (a raw pyzmq relay tree of the same shape,
ctl/bench/floor.py) measured right after the cluster stops. Heavy: run it on a quiet
machine; it prints the load average before and after each size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ctl.bench.cluster import BenchError, Cluster, shaped_toml  # noqa: E402
from ctl.bench.floor import Floor  # noqa: E402
from daemon.operator import Operator  # noqa: E402
from daemon.trace.model import Trace  # noqa: E402
from daemon.trace.report import report  # noqa: E402


def path_sums(trace: dict) -> dict:
    """The critical path of the trace's echo: hops (messages), and the sums over its hops
    of the senders' handlers, wire+queue and the receivers' handlers, in ms."""
    waves = [w for w in report(Trace.from_dict(trace))["waves"] if w["kind"] == "echo" and w["path"]]
    if len(waves) != 1:
        raise BenchError(f"the trace of wave {trace.get('wave')} has {len(waves)} echo waves with a decision, not 1")
    path = waves[0]["path"]
    hops = path[1:]
    # a hop's receiver is the next hop's sender: each step on the path counted once is
    # every hop's sender plus the last receiver (daemon/trace/report.py, path_time)
    return {"hops": sum(h["kind"] == "message" for h in hops),
            "local": sum(h["kind"] == "local" for h in hops),
            "handlers": 1000 * (sum(h["sender"] for h in hops) + path[-1]["receiver"]),
            "wire_queue": 1000 * sum(h["wire_queue"] for h in hops),
            "path": 1000 * waves[0]["path_time"]}


def measure(n: int, shape: str, waves: int, floor_waves: int, timeout: float) -> dict:
    text = shaped_toml(n, shape, 2, 2).replace("[cluster]\n", "[cluster]\nrecord = true\n", 1)
    rows = []
    with Cluster(text) as c:
        with Operator(c.topology, timeout=timeout, run_dir=c.run_dir) as op:
            op.echo()  # not counted: the nodes open their links
            for _ in range(waves):
                snap = op.echo()
                tr = op.trace([snap["wave"]], snap["wave"], "echo")
                if snap["missing"] or tr["missing"]:
                    raise BenchError(f"wave {snap['wave']}: echo missing {snap['missing'][:5]}, "
                                     f"trace missing {tr['missing'][:5]}")
                row = path_sums(tr)
                if row["local"]:
                    raise BenchError(f"wave {snap['wave']}: {row['local']} timer hop(s) on an echo's critical path")
                row["handler_us"] = 1000 * row["handlers"] / (row["hops"] + 1)
                row["hop_wire_us"] = 1000 * row["wire_queue"] / max(1, row["hops"])
                rows.append({"elapsed": snap["elapsed_ms"], **row})
    if c.left:
        raise BenchError(f"left running and killed: {c.left}")
    # the floor after the cluster: its ports are free again at once (ZeroMQ binds with
    # SO_REUSEADDR), the cluster's might not be after the floor's
    with Floor(n) as floor:
        floor.waves(5)  # not counted: the first waves warm the tree
        floor_p50 = statistics.median(floor.waves(floor_waves))
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    med["hops_range"] = (min(r["hops"] for r in rows), max(r["hops"] for r in rows))
    med["floor"] = floor_p50
    return med


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", default="31,200", help="comma-separated sizes (default 31,200)")
    ap.add_argument("--waves", type=int, default=20, help="traced echoes a size (default 20)")
    ap.add_argument("--floor-waves", type=int, default=100, help="floor waves a size (default 100)")
    ap.add_argument("--shape", default="balanced", help="balanced (the floor's tree) or a ctl gen shape (tree, ...)")
    ap.add_argument("--timeout", type=float, default=30.0, help="each wave's and fetch's deadline (default 30)")
    args = ap.parse_args()
    print("| nodes | load avg (1 min) | echo p50 ms (operator) | hops | path ms | handlers ms | wire+queue ms "
          "| a handler µs | a hop's wire+queue µs | floor p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in (int(x) for x in args.nodes.split(",")):
        load = os.getloadavg()[0]
        m = measure(n, args.shape, args.waves, args.floor_waves, args.timeout)
        hops = f"{m['hops']:g}" if m["hops_range"][0] == m["hops_range"][1] else f"{m['hops']:g} ({m['hops_range'][0]}–{m['hops_range'][1]})"
        print(f"| {n} | {load:.2f}–{os.getloadavg()[0]:.2f} | {m['elapsed']:.2f} | {hops} | {m['path']:.2f} "
              f"| {m['handlers']:.2f} | {m['wire_queue']:.2f} | {m['handler_us']:.0f} | {m['hop_wire_us']:.0f} "
              f"| {m['floor']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
