"""What a node's journal costs per step, SQLite with synchronous NORMAL and FULL.

    python bench/journal.py [--steps 2000]

Replays the records of typical steps of a node (daemon/core/journal.py) into a fresh
daemon.journal.SqliteJournal under a temporary directory: a submit of one task, a
transfer accepted (Seen + Put of 3 tasks), a move out (Leave of 3), its ACK (Acked), a
task done (Done); one transaction each, as the daemon writes them. Prints microseconds
per transaction for each, and the time to load a journal of 100,000 queued tasks.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from daemon.core import journal as rec  # noqa: E402
from daemon.core.tasks import Task  # noqa: E402
from daemon.journal import SqliteJournal  # noqa: E402


def steps(n: int):
    for i in range(n):
        tasks = tuple(Task(f"t{i}-{k}", "bench", 1.0) for k in range(3))
        yield "submit 1", [rec.Put((Task(f"s{i}", "bench", 1.0),), False, True)]
        yield "accept 3", [rec.Seen(f"in{i}", "peer", True, 1e9), rec.Put(tasks, False, False)]
        yield "move out 3", [rec.Leave(f"out{i}", "peer", 1e9, tasks)]
        yield "ack", [rec.Acked(f"out{i}")]
        yield "done", [rec.Done(f"s{i}")]


def measure(synchronous: str, n: int, folder: str) -> dict[str, float]:
    db = SqliteJournal(os.path.join(folder, f"{synchronous}.sqlite"), synchronous=synchronous)
    spent: dict[str, float] = {}
    count: dict[str, int] = {}
    for name, records in steps(n):
        t0 = time.perf_counter()
        db.write(records)
        spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0
        count[name] = count.get(name, 0) + 1
    db.close()
    return {name: spent[name] / count[name] * 1e6 for name in spent}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = {sync: measure(sync, args.steps, folder) for sync in ("NORMAL", "FULL")}
        print(f"{'step':<12}{'NORMAL us':>12}{'FULL us':>12}")
        for name in results["NORMAL"]:
            print(f"{name:<12}{results['NORMAL'][name]:>12.1f}{results['FULL'][name]:>12.1f}")
        db = SqliteJournal(os.path.join(folder, "big.sqlite"))
        db.write([rec.Put(tuple(Task(f"q{i}", "bench", 1.0) for i in range(100_000)), False, True)])
        db.close()
        t0 = time.perf_counter()
        db = SqliteJournal(os.path.join(folder, "big.sqlite"))
        state = db.load()
        db.close()
        print(f"load of {len(state.queue):,} queued tasks: {(time.perf_counter() - t0) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
