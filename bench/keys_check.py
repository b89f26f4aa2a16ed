"""What checking a cluster's keys costs (daemon/security.py, "Keys are checked before they
are used").

    python bench/keys_check.py [--nodes 1000] [--rounds 15]

A generated tree of ``--nodes`` nodes gets its keys once in a scratch run directory; then,
each round, what a supervisor does with them at its start (``ensure_keys`` over the
existing keys: the keyring and every public key file checked; ``read_files``, kept to
write them back; ``preload`` from those files) and what every ``ctl`` command does
(``ClusterKeys.load`` of the operator: the keyring, every public key, its own pair).
Prints the median and the best round of each, in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from daemon import security  # noqa: E402
from daemon.topogen import generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    topology = generate(args.nodes, "tree", seed=1)
    start, ctl = [], []
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        security.ensure_keys(run, topology, list(topology.names))
        for _ in range(args.rounds):
            security._preloaded.clear()
            began = time.perf_counter()
            security.ensure_keys(run, topology, list(topology.names))
            security.preload(run, topology, security.read_files(run))
            start.append(time.perf_counter() - began)
            security._preloaded.clear()
            began = time.perf_counter()
            security.ClusterKeys.load(run, topology, security.OPERATOR)
            ctl.append(time.perf_counter() - began)
    for what, times in (("a supervisor's start", start), ("a ctl command", ctl)):
        print(f"{args.nodes} nodes, keys at {what}: median {statistics.median(times) * 1e3:.1f} ms, "
              f"best {min(times) * 1e3:.1f} ms ({args.rounds} rounds)")


if __name__ == "__main__":
    main()
