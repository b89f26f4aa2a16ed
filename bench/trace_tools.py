"""How long the trace tools take on big traces: read, match, check, show and each file
format, for simulated echo and Finn waves of growing networks.

Run: ``.venv/bin/python bench/trace_tools.py [--nodes 50,200,1000] [--shape tree]``

Prints, per wave and size, the trace's steps and messages and the CPU time (the
process's, which a busy shared machine disturbs less than wall time) of: simulating the
traced wave, ``Trace.from_dict`` of its dict (reading a file), the matching and the
happens-before order, ``check``, ``report``, and writing .json (Perfetto), .shiviz
(vector clocks: a number per node and step) and .svg. The waves come from the simulator
with seed 1 on a generated topology of that shape (``ctl gen``'s, sub-seeded).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.sim.echo import simulate_echo  # noqa: E402
from daemon.sim.finn import simulate_finn  # noqa: E402
from daemon.sim.graph import generated  # noqa: E402
from daemon.trace import write  # noqa: E402
from daemon.trace.check import check  # noqa: E402
from daemon.trace.model import Trace  # noqa: E402
from daemon.trace.report import report  # noqa: E402


def cpu(fn):
    t0 = time.process_time()
    result = fn()
    return result, time.process_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", default="50,200,1000")
    parser.add_argument("--shape", default="tree")
    parser.add_argument("--svg-max", type=int, default=1000, help="skip .svg above this many nodes")
    args = parser.parse_args()
    import matplotlib  # imported once here so that the .svg column times drawing, not the import

    del matplotlib
    print(f"{'wave':<5} {'nodes':>6} {'steps':>7} {'msgs':>7}  CPU s: {'sim':>6} {'read':>6} {'order':>6} "
          f"{'check':>6} {'show':>6} {'.json':>6} {'.shiviz':>7} {'.svg':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.nodes.split(",")):
            topology = generated(n, args.shape, 1)
            for wave, simulate in (("echo", simulate_echo), ("finn", simulate_finn)):
                run, t_sim = cpu(lambda: simulate(topology, seed=1, traced=True))
                d = run.trace.to_dict()
                trace, t_read = cpu(lambda: Trace.from_dict(d))
                _, t_order = cpu(lambda: (trace.messages, trace.order, trace.lamport))
                violations, t_check = cpu(lambda: check(trace))
                assert violations[0] == [], violations[0][:3]
                _, t_show = cpu(lambda: report(trace))
                times = []
                for suffix in (".json", ".shiviz", ".svg"):
                    if suffix == ".svg" and n > args.svg_max:
                        times.append(float("nan"))
                        continue
                    times.append(cpu(lambda: write(trace, f"{tmp}/t{suffix}"))[1])
                sends = sum(m.send is not None for m in trace.messages)
                print(f"{wave:<5} {n:>6} {len(trace.steps):>7} {sends:>7}         {t_sim:>6.3f} {t_read:>6.3f} "
                      f"{t_order:>6.3f} {t_check:>6.3f} {t_show:>6.3f} {times[0]:>6.3f} {times[1]:>7.3f} "
                      f"{times[2]:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
