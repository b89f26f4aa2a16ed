"""How far the deterministic simulator scales: numbers printed, nothing asserted.

    python bench/sim_scale.py [--seed 1] [--echo-nodes 100000] [--finn-nodes 10000]
                              [--strong-nodes 1000] [--balance-nodes 1000] [--skip echo,finn,strong,balance]

1. Echo on a generated tree (``topogen`` shape ``tree``: each node picks a parent among
   the earlier nodes with fewer than 3 children, depth O(log n)): time to generate the
   topology, to index it, to simulate the wave; messages against 2|E|, simulated time
   of the decision, events per second, peak RSS.
2. Finn on a generated DAG (``topogen`` shape ``dag``: the first 1 + n/20 nodes are
   sources, a bounded-fan-out tree hangs below them and about a quarter of the nodes get
   one extra parent among the earlier nodes; so ancestor sets stay small, tens of
   nodes): wall time, messages, the most on one channel, average and largest |Inc|.
3. Finn on a strongly connected graph (``strong``: a ring plus n/2 chords), for
   contrast: every set grows to N, so each message costs O(N) and the run O(N·E·N).
4. ``ctl sim balance``'s function (``daemon.sim.balance.simulate``, scenario burst) on
   a generated tree, once per policy (heap, seed, none): wall time and its report.

All runs use the same seed; each line says the command that reproduces the topology.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from daemon.sim.echo import simulate_echo  # noqa: E402
from daemon.sim.finn import simulate_finn  # noqa: E402
from daemon.sim.graph import IndexedGraph  # noqa: E402
from daemon.topogen import generate  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def timed(fn, *args, **kwargs):
    """(result, wall seconds); the CPU seconds go to ``timed.cpu`` (the machine is shared:
    wall time includes other people's load, CPU time does not)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    timed.cpu = time.process_time() - cpu
    return result, time.perf_counter() - start


def build(n: int, shape: str, seed: int):
    topology, t_gen = timed(generate, n, shape, seed)
    graph, t_index = timed(IndexedGraph, topology)
    print(f"  topology: ctl gen --nodes {n} --shape {shape} --seed {seed}: {graph.edge_count} edges, "
          f"{len(graph.finn_initiators())} Finn initiators; generate {t_gen:.2f} s, index {t_index:.2f} s wall")
    return topology, graph


def bench_echo(n: int, seed: int) -> None:
    print(f"echo on a {n}-node tree")
    _, graph = build(n, "tree", seed)
    run, wall = timed(simulate_echo, graph, seed=seed)
    problems = run.problems(graph)
    print(f"  simulate: {wall:.2f} s wall ({timed.cpu:.2f} s CPU), {run.events} events "
          f"({run.events / timed.cpu / 1000:.0f}k events per CPU second)")
    print(f"  messages {run.messages} (2|E| = {2 * run.links}), decided at {run.decided_at:.3f} ms simulated, "
          f"{len(run.entries or ())} entries, checks: {'ok' if not problems else problems}")
    print(f"  peak RSS so far {peak_rss_mb():.0f} MB")


def bench_finn(n: int, shape: str, seed: int) -> None:
    print(f"finn on a {n}-node {shape}")
    _, graph = build(n, shape, seed)
    run, wall = timed(simulate_finn, graph, seed=seed)
    woke = [size for size in run.inc_sizes if size]
    problems = run.problems()
    print(f"  simulate: {wall:.2f} s wall ({timed.cpu:.2f} s CPU), {run.events} events")
    print(f"  messages {run.messages}, at most {run.max_per_channel} on one channel (2N = {2 * n}), "
          f"average |Inc| {sum(woke) / len(woke):.1f} (largest {max(woke)}), "
          f"{len(run.decisions)} of {n} decided, last at {run.last_decision:.3f} ms simulated, "
          f"checks: {'ok' if not problems else problems}")
    print(f"  peak RSS so far {peak_rss_mb():.0f} MB")


def bench_balance(n: int, seed: int) -> None:
    print(f"balance (scenario burst) on a {n}-node tree")
    try:
        from daemon.sim.balance import format_report, simulate
    except ModuleNotFoundError as exc:
        if exc.name != "daemon.sim.balance":
            raise
        print("  not available yet: daemon/sim/balance.py has not landed")
        return
    topology, _ = build(n, "tree", seed)
    for policy in ("heap", "seed", "none"):
        result, wall = timed(simulate, topology, scenario="burst", policy=policy, seed=seed)
        print(f"  policy {policy}: {wall:.2f} s wall ({timed.cpu:.2f} s CPU)")
        for line in format_report(result).splitlines():
            print(f"    {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--echo-nodes", type=int, default=100_000)
    parser.add_argument("--finn-nodes", type=int, default=10_000)
    parser.add_argument("--strong-nodes", type=int, default=1_000)
    parser.add_argument("--balance-nodes", type=int, default=1_000)
    parser.add_argument("--skip", default="", help="comma-separated: echo, finn, strong, balance")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    print(f"seed {args.seed}, python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    if "echo" not in skip:
        bench_echo(args.echo_nodes, args.seed)
    if "finn" not in skip:
        bench_finn(args.finn_nodes, "dag", args.seed)
    if "strong" not in skip:
        bench_finn(args.strong_nodes, "strong", args.seed)
    if "balance" not in skip:
        bench_balance(args.balance_nodes, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
