"""The burst scenario under each balancing policy, simulated.

    python bench/balance.py [--nodes 1000] [--seed 1] [--shape tree] [--interval 1.0]

Generates a topology (``daemon.topogen.generate(nodes, shape, seed)``; cpus 1 to 8 per
node), runs ``daemon.sim.balance.simulate`` with the burst scenario for the policies
heap, seed and none, and prints one aligned row each: simulated makespan, the lower
bound LB = max(total work / total cpus, longest task), their ratio, tasks moved,
balancing rounds, and the wall time the simulation took on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from daemon.core.plan import POLICIES  # noqa: E402
from daemon.sim.balance import simulate  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shape", default="tree")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    sys.exit(main())
