"""How long topologies take to generate, build, query, write and read, by size and shape.

    .venv/bin/python bench/topology_scale.py [N ...]     (default: 1000 100000)

Prints numbers; asserts nothing (the machine is shared and noisy). Best of 3 runs for
the in-memory steps; one run for the TOML text steps, which are slow at 100,000 nodes.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.topogen import SHAPES, generate  # noqa: E402
from daemon.topology import Topology, dumps, loads  # noqa: E402


def best(runs, fn):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(sizes):
    print(f"{'shape':<7} {'nodes':>7} {'edges':>7} {'generate':>9} {'construct':>10} "
          f"{'queries':>8} {'initiators':>10} {'dumps':>7} {'loads':>7}  (seconds)")
    for n in sizes:
        for shape in SHAPES:
            t_gen, t = best(3, lambda: generate(n, shape, seed=1))
            t_new, _ = best(3, lambda: Topology(t.cluster, t.nodes))

            def every_query():
                for name in t.names:
                    t.parents(name), t.children(name), t.neighbours(name)
            t_query, _ = best(3, every_query)
            t_init, _ = best(3, lambda: Topology(t.cluster, t.nodes).finn_initiators())
            t_dump, text = best(1, lambda: dumps(t))
            t_load, again = best(1, lambda: loads(text))
            assert again == t
            print(f"{shape:<7} {n:>7} {t.edge_count:>7} {t_gen:>9.3f} {t_new:>10.3f} "
                  f"{t_query:>8.3f} {t_init - t_new:>10.3f} {t_dump:>7.2f} {t_load:>7.2f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 100_000])
