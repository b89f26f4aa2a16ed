"""How long fetching an echo wave's trace takes over a large cluster (daemon/trace/recorder.py).

    python bench/trace_fetch.py [--nodes 1000] [--per-process 8] [--waves 5]

Starts a balanced binary tree of ``--nodes`` nodes recording their steps (``[cluster]
record = true``, ``nodes_per_process`` = ``--per-process``; a private ECHOFINN_HOME, stopped by pid whatever happens, as
``ctl bench`` does: ctl/bench/cluster.py), waits out a first echo (the nodes connect),
then for each of ``--waves`` echo waves: the wave, then ``Operator.trace`` of it (every
node asked at once) and ``daemon.trace.write`` to a ``.etrace`` file, each timed; and
once ``ctl echo --trace FILE`` as a user runs it (a new process: start-up, wave, fetch,
write). Prints the times and the trace's size. Heavy: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ctl.bench.cluster import Cluster, free_base_port, tree_toml, with_per_process  # noqa: E402
from daemon import trace  # noqa: E402
from daemon.operator import Operator  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--per-process", type=int, default=8)
    ap.add_argument("--waves", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=30.0, help="each wave's and each fetch's deadline (default 30)")
    args = ap.parse_args()
    text = with_per_process(tree_toml(args.nodes, free_base_port(args.nodes), fanout=2, cpus=1), args.per_process)
    text = text.replace("[cluster]\n", "[cluster]\nrecord = true\n", 1)
    out = tempfile.mkdtemp(prefix="echofinn-trace-bench-")
    path = os.path.join(out, "echo.etrace")
    with Cluster(text) as c:
        print(f"{args.nodes} nodes, {args.per_process} a process: started in {c.start_s:.1f} s", flush=True)
        waves, fetches, writes = [], [], []
        with Operator(c.topology, timeout=args.timeout, run_dir=c.run_dir) as op:
            op.echo()  # not timed: the nodes open their links
            for _ in range(args.waves):
                snap = op.echo()
                t0 = time.perf_counter()
                tr = op.trace([snap["wave"]], snap["wave"], "echo")
                t1 = time.perf_counter()
                trace.write(tr, path)
                t2 = time.perf_counter()
                if snap["missing"] or tr["missing"] or len({s["node"] for s in tr["steps"]}) != args.nodes:
                    print(f"incomplete: echo missing {snap['missing'][:5]}, trace missing {tr['missing'][:5]}")
                waves.append(snap["elapsed_ms"])
                fetches.append((t1 - t0) * 1000)
                writes.append((t2 - t1) * 1000)
        size = os.path.getsize(path)
        print(f"echo wave p50 {statistics.median(waves):.1f} ms; trace fetched in p50 {statistics.median(fetches):.1f} ms "
              f"(max {max(fetches):.1f}), written in p50 {statistics.median(writes):.1f} ms (max {max(writes):.1f}); "
              f"{len(tr['steps'])} steps, {size / 1e6:.2f} MB ({args.waves} waves)")
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "ctl", "echo", "-t", c.path, "--timeout", str(args.timeout),
                            "--trace", path], env=c.env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        wall = time.perf_counter() - t0
        print(f"ctl echo --trace: exit {r.returncode}, {wall:.2f} s wall (process start-up, wave, fetch, write); "
              f"{r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ''}")
    os.remove(path)
    os.rmdir(out)
    if c.left:
        print(f"left running and killed: {c.left}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
