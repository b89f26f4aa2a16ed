"""A client that tests/e2e/test_partition.py runs inside a test namespace: one move of
COUNT queued tasks from DONOR to DEST, sent as a balancing round sends it (the
operator's ``move`` message, daemon/operator.py ``Operator.rebalance``), whatever DEST's
state. Prints the donor's ``move.ok`` as JSON; exit 1 without one in time.

    python tests/e2e/partition_client.py TOPOLOGY DONOR DEST COUNT
"""

from __future__ import annotations

import json
import sys
import time

from daemon.operator import Operator, UserError, _wave_id
from daemon.topology import load


def main(topology: str, donor: str, dest: str, count: str) -> int:
    move_id = f"{_wave_id('m')}-0"
    reply: dict = {}

    def accept(node, msg):
        if msg["t"] == "move.ok" and msg["move_id"] == move_id:
            reply.update(msg)
            return True
        return False

    with Operator(load(topology), timeout=5.0) as op:
        try:
            op._send(donor, "move", move_id=move_id, dest=dest, tasks=[], count=int(count), id=1)
            op._collect(time.monotonic() + 5.0, accept)
        except UserError as exc:
            print(f"partition_client: {exc}", file=sys.stderr)
            return 1
    print(json.dumps({"move_id": move_id, "count": reply["count"], "moved": reply["moved"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
