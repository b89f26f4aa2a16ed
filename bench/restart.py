"""How long a node killed with SIGKILL takes to be RUNNING again, and whether the echo
begun the moment it is has it (RUNNING means reachable; ARCHITECTURE.md, "Durable state").

    python bench/restart.py [--kills 5] [--tasks 30]

Starts topologies/seed.toml (the default restart policy, its crash limit raised to let
every kill restart) in a private ECHOFINN_HOME on free ports (ctl/bench/cluster.py),
gives pical ``--tasks`` tasks of an hour, then ``--kills`` times: SIGKILL pical's pid
from cluster.json, poll that record every 10 ms until pical is RUNNING with a new pid,
and begin an echo at once from this process. Prints the seconds from the kill to
RUNNING (the restart backoff, 0.1 s doubling per crash, plus the new process's start and
the second it waits for its epoch) and whether the echo had pical with all its tasks.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import tomli_w  # noqa: E402

from ctl.bench.cluster import Cluster, free_base_port  # noqa: E402
from daemon.operator import Operator  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--tasks", type=int, default=30)
    args = ap.parse_args()
    with open(os.path.join(ROOT, "topologies", "seed.toml"), "rb") as f:
        data = tomllib.load(f)
    data["cluster"].update(name="bench", base_port=free_base_port(len(data["node"])), rebalance_interval=0,
                           restart_max_crashes=args.kills + 5)
    found = 0
    with Cluster(tomli_w.dumps(data)) as cluster:
        os.environ["ECHOFINN_HOME"] = cluster.env["ECHOFINN_HOME"]  # the operator key, for this process
        r = cluster.ctl("submit", "pical", "--tasks", str(args.tasks), "--cost", "3600", "-t", cluster.path)
        assert r.returncode == 0, r.stderr

        def pical() -> dict:
            while True:
                try:
                    return json.loads((cluster.run_dir / "cluster.json").read_text())["nodes"]["pical"]
                except (OSError, ValueError):  # between the supervisor's atomic writes
                    time.sleep(0.01)

        for kill in range(1, args.kills + 1):
            old = pical()["pid"]
            t = time.monotonic()
            os.kill(old, signal.SIGKILL)
            while (entry := pical())["state"] != "RUNNING" or entry["pid"] == old:
                if entry["state"] == "FATAL":
                    print(f"pical is FATAL: {entry['last_exit']}", file=sys.stderr)
                    return 1
                time.sleep(0.01)
            running = time.monotonic() - t
            with Operator(cluster.topology, timeout=5) as op:
                snap = op.echo()
            rows = [n for n in snap["nodes"] if n["name"] == "pical"]
            ok = not snap["missing"] and len(rows) == 1 and rows[0]["running"] + rows[0]["queued"] == args.tasks
            found += ok
            print(f"kill {kill}: RUNNING again after {running:.2f} s; the echo begun at once "
                  f"{'had pical with its ' + str(args.tasks) + ' tasks' if ok else 'missed it: ' + str(snap['missing'])}",
                  flush=True)
            time.sleep(0.5)  # the killed process reaped, its port free
    print(f"{found} of {args.kills} echoes begun at once had pical")
    return 0 if found == args.kills else 1


if __name__ == "__main__":
    sys.exit(main())
