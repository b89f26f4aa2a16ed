"""The node's own Python work per echo wave, without the inbox's system calls.

    python bench/node_handle.py [--waves 3000] [--cold] [--recorder] [--record] [--debug-log]

Builds the NodeDaemon of an inner node of topologies/binary31.toml (not bound; its
DEALERs send to one in-process sink) and feeds ``handle`` the three frames such a node
gets per wave — an EXPLORE from its father and an ECHO from each child, carrying seven
entries each — then prints microseconds per wave (decoding, the node core, encoding and
the sends) and a cProfile summary. ``--cold`` also times each message after copying
64 MiB, which evicts the caches as the other processes of a large cluster do between
two turns of a node (ARCHITECTURE.md, "Nodes per process"). ``--recorder`` measures what
the flight recorder (daemon/trace/recorder.py) adds: rounds of waves with it on and off
(its ``record`` a no-op), interleaved so that a shared machine's noise hits both alike,
and prints the median round of each. ``--record`` does the same for the recording for
replay (daemon/recording.py, to a temporary run directory, written after each round as
the daemon writes it once a second). ``--debug-log`` does the same for the node's log at
``[cluster] log_level = "debug"`` (daemon/logs.py: a line per wave, to a file in a
temporary run directory) against the default level, where a step's only cost is a test
of ``None``.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import zmq  # noqa: E402

from daemon import logs, wire  # noqa: E402
from daemon.core.node import routing_ids  # noqa: E402
from daemon.node import NodeDaemon  # noqa: E402
from daemon.recording import RecordingWriter, recording_file  # noqa: E402
from daemon.topology import load  # noqa: E402
from daemon.trace.recorder import Recorder  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--waves", type=int, default=3000)
    ap.add_argument("--cold", action="store_true", help="also time each message with the caches evicted before it")
    ap.add_argument("--recorder", action="store_true", help="also time waves with the flight recorder on and off, interleaved")
    ap.add_argument("--record", action="store_true", help="also time waves with the recording for replay on and off, interleaved")
    ap.add_argument("--debug-log", action="store_true", help="also time waves with the log at level debug and at info, interleaved")
    args = ap.parse_args()
    topology = load(os.path.join(ROOT, "topologies", "binary31.toml"))
    name = topology.names[1]
    father, kids = topology.parents(name)[0], topology.children(name)
    node = NodeDaemon(topology, name)
    ctx = node.ctx = zmq.Context()
    sink = ctx.socket(zmq.ROUTER)
    sink.setsockopt(zmq.RCVHWM, 0)
    sink.setsockopt(zmq.LINGER, 0)
    sink.bind("inproc://sink")
    for peer in topology.neighbours(name):
        sock = node.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.SNDHWM, 0)  # queue everything until the sink is drained
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect("inproc://sink")
        node.peers[peer] = sock

    def drain() -> None:
        while True:
            try:
                sink.recv_multipart(zmq.DONTWAIT)
            except zmq.Again:
                return
    entry = node.core._sample(False, time.time())
    epoch = node.epoch + 1

    def frames(wave: str) -> list[list[bytes]]:
        out = [[father.encode(), wire.encode("wave", epoch, wave=wave, msg="explore", body=[], params={"detail": False},
                                             budget=60.0, report=b"")]]
        for k in kids:
            run = wire.pack_entries([(f"x{i}", k, dict(entry)) for i in range(7)])
            out.append([k.encode(), wire.encode("wave", epoch, wave=wave, msg="echo", body=[run], params={},
                                                budget=None, report=b"")])
        return out

    try:
        start = time.time_ns()
        batch = [frames(wire.new_wave_id("e", start, f"w{i}")) for i in range(args.waves)]
        t0 = time.perf_counter()
        for wave in batch:
            for f in wave:
                node.handle(f, time.time())
        per_wave = (time.perf_counter() - t0) / args.waves * 1e6
        drain()
        assert node.stats["internal"] == 0 and node.stats["wave_errors"] == 0 and node.stats["dropped"] == 0, node.stats
        print(f"{per_wave:.1f} us of Python per wave at inner node {name} (3 messages in, 3 out)")

        def interleaved(what: str, switch, after_round=lambda: None) -> None:
            """20 rounds of a tenth of the waves each, ``switch(True)`` and ``switch(False)``
            interleaved; print the median round of each."""
            per = {"on": [], "off": []}
            for r in range(20):
                for mode in ("on", "off") if r % 2 else ("off", "on"):
                    switch(mode == "on")
                    batch = [frames(wire.new_wave_id("e", start, f"{what[0]}{r}{mode}{i}")) for i in range(args.waves // 10)]
                    t0 = time.perf_counter()
                    for wave in batch:
                        for f in wave:
                            node.handle(f, time.time())
                    after_round()
                    per[mode].append((time.perf_counter() - t0) / len(batch) * 1e6)
                    drain()
            switch(False)
            on, off = statistics.median(per["on"]), statistics.median(per["off"])
            print(f"{what}: {on:.1f} us per wave on, {off:.1f} us off (median of 20 rounds of "
                  f"{args.waves // 10} waves each): +{on - off:.1f} us, {(on - off) / 3:.2f} us a step")

        if args.recorder:
            recorder = Recorder(name, node.epoch, routing_ids(frozenset(topology.names)))  # as record = true makes
            off = types.SimpleNamespace(record=lambda *step: None)
            interleaved("flight recorder", lambda on: setattr(node, "recorder", recorder if on else off))
            node.recorder = None
        if args.record:
            run_dir = tempfile.mkdtemp(prefix="node-handle-")
            writer = RecordingWriter(recording_file(run_dir, name, node.epoch), name, node.epoch, time.time(), False,
                                     node.core.config, None)
            try:
                interleaved("recording for replay", lambda on: setattr(node, "recording", writer if on else None),
                            writer.flush)
            finally:
                writer.close()
                shutil.rmtree(run_dir)
        if args.debug_log:
            run_dir = tempfile.mkdtemp(prefix="node-handle-")
            logger = logs.node_logger(name, run_dir, dataclasses.replace(topology.cluster, log_level="debug"))
            book = logs.NodeLog(name)  # at debug: each step's effects pass through its WaveLog
            try:
                interleaved("debug log", lambda on: setattr(node, "log_steps", book.step if on else None))
            finally:
                for handler in list(logger.handlers):
                    logger.removeHandler(handler)
                    handler.close()
                shutil.rmtree(run_dir)
        if args.cold:
            waves = max(1, args.waves // 3)
            batch = [frames(wire.new_wave_id("e", start, f"c{i}")) for i in range(waves)]
            src, dst = bytearray(64 << 20), bytearray(64 << 20)
            spent = 0.0
            for wave in batch:
                for f in wave:
                    dst[:] = src  # evict: what 200 other processes do between two turns
                    t0 = time.perf_counter()
                    node.handle(f, time.time())
                    spent += time.perf_counter() - t0
                drain()
            print(f"{spent / waves * 1e6:.1f} us per wave with the caches evicted before each message ({waves} waves)")
        batch = [frames(wire.new_wave_id("e", start, f"v{i}")) for i in range(args.waves)]
        prof = cProfile.Profile()
        prof.enable()
        for wave in batch:
            for f in wave:
                node.handle(f, time.time())
        prof.disable()
        drain()
        pstats.Stats(prof).sort_stats("tottime").print_stats(int(os.environ.get("TOP", "10")))
    finally:
        node.close()
        ctx.destroy(linger=0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
