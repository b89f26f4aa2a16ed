"""The node's own Python work per echo wave, without sockets' system calls.

    python bench/node_handle.py [--waves 3000]

Builds the NodeDaemon of an inner node of topologies/binary31.toml (not bound; its
DEALERs queue without a peer) and feeds ``handle`` the three frames such a node gets
per wave — an EXPLORE from its father and an ECHO from each child, carrying seven
entries each — then prints microseconds per wave (decoding, the node core, encoding
and the DEALERs' queueing) and a cProfile summary.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import zmq  # noqa: E402

from daemon import wire  # noqa: E402
from daemon.node import NodeDaemon  # noqa: E402
from daemon.topology import load  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--waves", type=int, default=3000)
    args = ap.parse_args()
    topology = load(os.path.join(ROOT, "topologies", "binary31.toml"))
    name = topology.names[1]
    father, kids = topology.parents(name)[0], topology.children(name)
    node = NodeDaemon(topology, name)
    node.ctx = zmq.Context()
    for peer in topology.neighbours(name):
        sock = node.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.SNDHWM, 0)  # queue everything: no peer is listening
        sock.setsockopt(zmq.LINGER, 0)
        node.peers[peer] = sock
    entry = node.core._sample(False, time.time())
    epoch = node.epoch + 1

    def frames(wave: str) -> list[list[bytes]]:
        out = [[father.encode(), wire.encode("explore", epoch, wave=wave, detail=False, budget=60.0)]]
        for k in kids:
            run = wire.pack_entries([(f"x{i}", k, dict(entry)) for i in range(7)])
            out.append([k.encode(), wire.encode("echo", epoch, wave=wave, entries=run)])
        return out

    try:
        start = time.time_ns()
        batch = [frames(wire.new_wave_id("e", start, f"w{i}")) for i in range(args.waves)]
        t0 = time.perf_counter()
        for wave in batch:
            for f in wave:
                node.handle(f, time.time())
        per_wave = (time.perf_counter() - t0) / args.waves * 1e6
        assert node.stats["internal"] == 0 and node.stats["wave_errors"] == 0, node.stats
        print(f"{per_wave:.1f} us of Python per wave at inner node {name} (3 messages in, 3 out)")
        batch = [frames(wire.new_wave_id("e", start, f"v{i}")) for i in range(args.waves)]
        prof = cProfile.Profile()
        prof.enable()
        for wave in batch:
            for f in wave:
                node.handle(f, time.time())
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(int(os.environ.get("TOP", "10")))
    finally:
        node.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
