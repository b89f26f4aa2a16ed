"""A longer chaos sweep than CI's: many seeds of ``ctl sim chaos`` over small and mid-size
topologies; prints seeds/s, events, faults per kind, tasks, lost and duplicates.

    python bench/chaos_sweep.py                       # 2,000 seeds on each topology below
    python bench/chaos_sweep.py --seeds 20000 --first 100000
    python bench/chaos_sweep.py --nodes 12 --shape dag --seeds 500   (generated, one per seed)
    python bench/chaos_sweep.py --long-partitions   (every ACK of a move may be lost: duplicates allowed)

Exit 1 if any seed fails a check; each failure is printed with the command that replays it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from daemon.sim.chaos import FAULT_KINDS, LONG_PARTITIONS, ChaosConfig, simulate_chaos  # noqa: E402
from daemon.sim.graph import generated  # noqa: E402
from daemon.topology import load  # noqa: E402

FILES = ["topologies/chaos/pair.toml", "topologies/chaos/diamond.toml", "topologies/chaos/ring.toml",
         "topologies/chaos/line.toml", "topologies/seed.toml", "topologies/strong.toml", "topologies/dag.toml"]


def sweep(label, topology_of, first, seeds, replay_of, config):
    faults = dict.fromkeys(FAULT_KINDS, 0)
    totals = dict.fromkeys(("events", "tasks", "done", "lost", "duplicated", "allowed_duplicates", "cuts", "finn"), 0)
    failures = []
    t0 = time.perf_counter()
    for seed in range(first, first + seeds):
        r = simulate_chaos(topology_of(seed), seed, config)
        for k in ("events", "tasks", "done", "lost", "duplicated", "allowed_duplicates"):
            totals[k] += r[k]
        totals["cuts"] += r["echoes"]["cuts_checked"]
        totals["finn"] += r["finn_decisions"]
        for k, v in r["faults"].items():
            faults[k] += v
        if not r["ok"]:
            failures.append((seed, r["problems"]))
    dt = time.perf_counter() - t0
    print(f"{label}: {seeds} seeds in {dt:.1f} s ({seeds / dt:.0f} seeds/s), {totals['events']} events "
          f"({totals['events'] / dt:.0f}/s), tasks {totals['tasks']}, done {totals['done']}, lost {totals['lost']}, "
          f"duplicated {totals['duplicated']}, allowed duplicates {totals['allowed_duplicates']}, "
          f"cuts checked {totals['cuts']}, Finn decisions {totals['finn']}, failed seeds {len(failures)}")
    print("  faults: " + ", ".join(f"{k} {v}" for k, v in faults.items()))
    for seed, problems in failures[:10]:
        print(f"  seed {seed}: {problems[0]}")
        print(f"    replay: {replay_of(seed)}")
    return len(failures)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=2000)
    p.add_argument("--first", type=int, default=1_000_000, help="first seed (default past CI's 0..499)")
    p.add_argument("--nodes", type=int)
    p.add_argument("--shape", default="tree")
    p.add_argument("--long-partitions", action="store_true", help="partitions of 2-8 s (ctl sim chaos --long-partitions)")
    args = p.parse_args()
    config = LONG_PARTITIONS if args.long_partitions else ChaosConfig()
    flag = " --long-partitions" if args.long_partitions else ""
    print(f"seeds {args.first}..{args.first + args.seeds - 1}")
    failed = 0
    if args.nodes:
        failed += sweep(f"generated {args.shape} n={args.nodes}", lambda s: generated(args.nodes, args.shape, s),
                        args.first, args.seeds,
                        lambda s: f"ctl sim chaos --nodes {args.nodes} --shape {args.shape} --seed {s}{flag}", config)
    else:
        for path in FILES:
            topology = load(os.path.join(ROOT, path))
            failed += sweep(path, lambda s: topology, args.first, args.seeds,
                            lambda s, path=path: f"ctl sim chaos {path} --seed {s}{flag}", config)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
