"""The burst scenario under each balancing policy, simulated.

    python bench/balance.py [--nodes 1000] [--seed 1] [--shape tree] [--interval 1.0]
    python bench/balance.py --snapshots 20000


Generates a topology (``daemon.topogen.generate(nodes, shape, seed)``; cpus 1 to 8 per
node), runs ``daemon.sim.balance.simulate`` with the burst scenario for the policies
heap, seed and none, and prints one aligned row each: simulated makespan, the lower
bound LB = max(total work / total cpus, longest task), their ratio, tasks moved,
balancing rounds, and the wall time the simulation took on this machine.

``--snapshots N`` measures the heap plan itself instead, on N random snapshots (2-8
nodes, 1-6 cpus, up to 20 queued tasks, round and arbitrary costs): how often applying
it one Move per (source, dest) pair raised the model's makespan or left something for
an immediate re-plan to move (in the plan's own order, both are proven never to
happen), how close it came to its bound, and makespan / LB on burst snapshots with at
least 7 tasks per CPU.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from daemon.core.plan import (  # noqa: E402
    POLICIES, Move, NodeLoad, apply_moves, lower_bound, makespan, plan_moves, plan_steps,
)
from daemon.sim.balance import simulate  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shape", default="tree")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--snapshots", type=int, default=0, help="measure the heap plan on this many snapshots")
    args = parser.parse_args(argv)
    if args.snapshots:
        return plan_properties(args.snapshots)

    from daemon.topogen import generate

    topology = generate(args.nodes, args.shape, args.seed)
    print(f"seed {args.seed}: burst on a {args.shape} of {args.nodes} nodes, a round every {args.interval:g} s")
    header = f"{'policy':<7} {'makespan s':>11} {'LB s':>7} {'ratio':>8} {'moves':>7} {'rounds':>7} {'wall s':>7}"
    print(header)
    for policy in POLICIES:
        started = time.perf_counter()
        report = simulate(topology, policy=policy, seed=args.seed, interval=args.interval)
        wall = time.perf_counter() - started
        print(f"{policy:<7} {report['makespan']:>11.3f} {report['lower_bound']:>7.3f} {report['ratio']:>8.3f} "
              f"{report['moves']:>7} {report['rounds']:>7} {wall:>7.2f}")
    print(f"({report['nodes']} nodes, {report['cpus']} cpus, {report['tasks']} tasks)")
    return 0


def random_snapshot(r: random.Random) -> list[NodeLoad]:
    loads = []
    for i in range(r.randint(2, 8)):
        cpus = r.randint(1, 6)
        cost = lambda: r.choice([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, r.uniform(0.01, 10.0)])  # noqa: E731
        running = tuple(cost() for _ in range(r.randint(0, cpus)))
        queued = tuple((f"n{i}-t{k}", cost()) for k in range(r.randint(0, 20 if i < 2 else 4)))
        loads.append(NodeLoad(f"n{i}", cpus, running, queued))
    return loads


def burst_snapshot(r: random.Random) -> list[NodeLoad]:
    n = r.randint(2, 8)
    cpus = [r.randint(1, 4) for _ in range(n)]
    queues: list[list] = [[] for _ in range(n)]
    for k in range(7 * sum(cpus) + r.randint(0, 20)):
        queues[r.randint(0, min(2, n - 1))].append((f"t{k}", r.uniform(0.5, 1.5)))
    return [NodeLoad(f"n{i}", cpus[i], tuple(r.uniform(0.0, 1.5) for _ in range(r.randint(0, cpus[i]))),
                     tuple(queues[i])) for i in range(n)]


def plan_properties(count: int) -> int:
    rose = replanned = most = 0
    worst_gap = 0.0
    for seed in range(count):
        loads = random_snapshot(random.Random(seed))
        grouped = apply_moves(loads, plan_moves(loads))
        rose += makespan(grouped) > makespan(loads)
        again = sum(len(m.task_ids) for m in plan_moves(grouped))
        replanned += again > 0
        most = max(most, again)
        ordered = apply_moves(loads, [Move(a, b, (t,)) for a, b, t in plan_steps(loads)])
        m = sum(n.cpus for n in loads)
        work = sum(n.work for n in loads)
        q = max((c for n in loads for _, c in n.queued), default=0.0)
        longest_running = max((x for n in loads for x in n.running), default=0.0)
        if q > 0 and makespan(ordered) > longest_running:
            worst_gap = max(worst_gap, (makespan(ordered) - work / m) / q)
    worst_ratio = 0.0
    bursts = max(1, count // 7)
    for seed in range(bursts):
        loads = burst_snapshot(random.Random(seed))
        ordered = apply_moves(loads, [Move(a, b, (t,)) for a, b, t in plan_steps(loads)])
        worst_ratio = max(worst_ratio, makespan(ordered) / lower_bound(loads))
    print(f"{count} random snapshots, heap plan applied one Move per pair:")
    print(f"  makespan rose          {rose}")
    print(f"  re-plan moved tasks    {replanned} ({100 * replanned / count:.1f} %), at most {most}")
    print(f"  worst (M - W/m) / q    {worst_gap:.3f}   (proven bound 1.5 (1 - 1/m))")
    print(f"{bursts} burst snapshots (>= 7 tasks per cpu): worst makespan / LB {worst_ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
