"""Echo latency over real daemons, against a floor measured in the same run.

    python bench/echo_latency.py [--nodes 31] [--waves 200] [--load] [--big 200] [--security]

1. The floor: a minimal pyzmq relay tree of the same shape (balanced binary tree, one
   process per node, ROUTER down / DEALER up, a msgpack list of small dicts echoed up).
   No framework, no state machine, no sampling: the least an echo wave can cost here.
2. The cluster: ``ctl start`` on a generated balanced binary tree of the same size, then
   ``--waves`` echo waves through :class:`daemon.operator.Operator` (the wave's own time:
   start message to result), idle, then (``--load``) with every CPU slot of every node
   busy burning (burners under SCHED_IDLE).
3. The original lab's 8-node tree (topologies/seed.toml), idle.
4. ``--big N``: start an N-node cluster, time the start and 20 echo waves, stop.
5. ``--security``: what CURVE costs (daemon/security.py). Two clusters of the same tree
   run side by side, one with security = "curve" (the default), one with "none"; their
   waves alternate (curve, none, curve, ...), so both see the same machine.

The clusters above run with the default, security = "curve".

Prints p50/p90/min per case and the ratio of each p50 to the floor's p50.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)


def free_base_port(n: int) -> int:
    """A base port with n free consecutive ports (checked by binding)."""
    for base in range(23000, 60000, 997):
        socks = []
        try:
            for i in range(n + 1):
                s = socket.socket()
                s.bind(("127.0.0.1", base + i))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


# --- the floor ---------------------------------------------------------------------------


def _relay(i: int, n: int, base: int) -> None:
    import msgpack
    import zmq

    ctx = zmq.Context()
    kids = [c for c in (2 * i + 1, 2 * i + 2) if c < n]
    down = ctx.socket(zmq.ROUTER)
    down.bind(f"tcp://127.0.0.1:{base + i}")
    up = ctx.socket(zmq.DEALER)
    up.setsockopt(zmq.IDENTITY, str(i).encode())
    up.connect(f"tcp://127.0.0.1:{base + (i - 1) // 2 if i else base + n}")
    ready = 0
    while ready < len(kids):
        _, what = down.recv_multipart()
        ready += what == b"ready"
    up.send(b"ready")
    me = {"name": f"n{i}", "cpus": 4, "running": 1, "queued": 3, "done": 7, "load": 1.0}
    while True:
        msg = up.recv()
        for k in kids:
            down.send_multipart([str(k).encode(), msg])
        if msg == b"stop":
            break
        states = [me]
        for _ in kids:
            states.extend(msgpack.unpackb(down.recv_multipart()[1]))
        up.send(msgpack.packb(states))
    ctx.destroy(linger=0)


def floor(n: int, waves: int) -> list[float]:
    import msgpack
    import zmq

    base = free_base_port(n)
    ctx = zmq.Context()
    drv = ctx.socket(zmq.ROUTER)
    drv.bind(f"tcp://127.0.0.1:{base + n}")
    procs = [mp.get_context("fork").Process(target=_relay, args=(i, n, base)) for i in range(n)]
    for p in procs:
        p.start()
    try:
        drv.recv_multipart()  # ready: the whole tree is connected
        lat = []
        for w in range(waves):
            t = time.perf_counter()
            drv.send_multipart([b"0", msgpack.packb({"wave": w})])
            _, rep = drv.recv_multipart()
            lat.append((time.perf_counter() - t) * 1000)
            assert len(msgpack.unpackb(rep)) == n
        drv.send_multipart([b"0", b"stop"])
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
        ctx.destroy(linger=0)
    return lat


# --- the cluster -------------------------------------------------------------------------


def ctl(env, *args, check=True):
    return subprocess.run([sys.executable, "-m", "ctl", *args], env=env, cwd=ROOT, check=check, capture_output=True, text=True)


def binary_tree_toml(n: int, base: int, cpus: int = 2, security: str = "curve", name: str = "bench") -> str:
    lines = ["[cluster]", f'name = "{name}"', "task_time = 1.0", "rebalance_interval = 0", f"base_port = {base}",
             f'security = "{security}"', ""]
    for i in range(n):
        parent = f'["n{(i - 1) // 2}"]' if i else "[]"
        lines += ["[[node]]", f'name = "n{i}"', f"cpus = {cpus}", f"parents = {parent}", ""]
    return "\n".join(lines)


def seed_toml() -> str:
    """The original lab's tree (topologies/seed.toml) on free ports, balancing off."""
    import tomllib

    import tomli_w

    with open(os.path.join(ROOT, "topologies", "seed.toml"), "rb") as f:
        data = tomllib.load(f)
    data["cluster"].update(base_port=free_base_port(len(data["node"])), rebalance_interval=0)
    return tomli_w.dumps(data)


class Cluster:
    def __init__(self, n: int, tmp: str, text: str | None = None):
        self.n = n
        self.env = dict(os.environ, ECHOFINN_HOME=os.path.join(tmp, "home"))
        os.environ["ECHOFINN_HOME"] = self.env["ECHOFINN_HOME"]  # where Operator finds the operator key
        self.path = os.path.join(tmp, f"tree{n}.toml")
        with open(self.path, "w") as f:
            f.write(text or binary_tree_toml(n, free_base_port(n)))

    def __enter__(self):
        t = time.perf_counter()
        r = ctl(self.env, "start", self.path, check=False)
        self.start_s = time.perf_counter() - t
        if r.returncode:
            ctl(self.env, "stop", "-t", self.path, check=False)
            raise RuntimeError(f"ctl start failed: {r.stderr}")
        from daemon.topology import load

        self.topology = load(self.path)
        return self

    def __exit__(self, *exc):
        r = ctl(self.env, "stop", "-t", self.path, check=False)
        if r.returncode:
            print(r.stdout, r.stderr, file=sys.stderr)


LOST: dict[str, int] = {}


def echo_waves(topology, waves: int, label: str = "") -> list[float]:
    """``waves`` echo waves; a wave that does not come back counts as lost."""
    from daemon.operator import Operator, WaveTimeout

    lat = []
    with Operator(topology) as op:
        op.echo()  # connect
        for _ in range(waves):
            try:
                snap = op.echo()
            except WaveTimeout:
                LOST[label] = LOST.get(label, 0) + 1
                continue
            assert len(snap["nodes"]) == len(topology.names)
            lat.append(snap["elapsed_ms"])
    return lat


def security_cost(n: int, waves: int, ref: float) -> None:
    """Two clusters of the same tree, CURVE and none, waves alternating between them."""
    from daemon.operator import Operator, WaveTimeout

    with tempfile.TemporaryDirectory() as tmp:
        texts = {mode: binary_tree_toml(n, free_base_port(2 * n), security=mode, name=f"bench-{mode}")
                 for mode in ("curve", "none")}
        with Cluster(n, os.path.join(tmp), texts["curve"]) as curve:
            text = texts["none"].replace(f"base_port = {curve.topology.cluster.base_port}",
                                         f"base_port = {curve.topology.cluster.base_port + n}")
            plain_path = os.path.join(tmp, "plain.toml")
            with open(plain_path, "w") as f:
                f.write(text)
            r = ctl(curve.env, "start", plain_path, check=False)
            if r.returncode:
                raise RuntimeError(f"ctl start failed: {r.stderr}")
            try:
                from daemon.topology import load

                plain = load(plain_path)
                lat: dict[str, list[float]] = {"curve": [], "none": []}
                names = {"curve": f'echo, security = "curve" ({n})', "none": f'echo, security = "none" ({n})'}
                with Operator(curve.topology) as op_curve, Operator(plain) as op_none:
                    ops = {"curve": op_curve, "none": op_none}
                    for op in ops.values():
                        op.echo()  # connect
                    for _ in range(waves):
                        for mode, op in ops.items():
                            try:
                                lat[mode].append(op.echo()["elapsed_ms"])
                            except WaveTimeout:
                                LOST[names[mode]] = LOST.get(names[mode], 0) + 1
                for mode in ("none", "curve"):
                    print(summary(names[mode], lat[mode], ref))
                p50 = {mode: statistics.median(v) for mode, v in lat.items()}
                print(f'CURVE cost on echo ({n} nodes): p50 {p50["curve"] - p50["none"]:+.2f} ms, '
                      f'{p50["curve"] / p50["none"]:.2f}x the same run\'s security = "none"')
            finally:
                ctl(curve.env, "stop", "-t", plain_path, check=False)


def summary(name: str, lat: list[float], ref: float | None) -> str:
    lat = sorted(lat)
    p50, p90 = statistics.median(lat), lat[int(len(lat) * 0.9)]
    ratio = f"  {p50 / ref:5.2f}x floor" if ref else ""
    lost = f"  lost {LOST.get(name, 0)}/{len(lat) + LOST.get(name, 0)}" if ref else ""
    return f"{name:<34} p50 {p50:7.2f} ms  p90 {p90:7.2f} ms  min {lat[0]:7.2f} ms{ratio}{lost}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=31)
    ap.add_argument("--waves", type=int, default=200)
    ap.add_argument("--load", action="store_true", help="also measure with every CPU slot busy")
    ap.add_argument("--big", type=int, default=0, metavar="N", help="also start an N-node cluster and time one wave")
    ap.add_argument("--security", action="store_true", help='also compare security = "curve" and "none", waves alternating')
    args = ap.parse_args()
    from daemon.operator import Operator

    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    fl = floor(args.nodes, args.waves)
    ref = statistics.median(fl)
    print(summary(f"floor: raw pyzmq relay tree ({args.nodes})", fl, None))
    with tempfile.TemporaryDirectory() as tmp, Cluster(args.nodes, tmp) as c:
        print(f"ctl start ({args.nodes} nodes): {c.start_s:.2f} s")
        name = f"echofinn echo, idle ({args.nodes})"
        print(summary(name, echo_waves(c.topology, args.waves, name), ref))
        if args.load:
            with Operator(c.topology) as op:
                for name in c.topology.names:
                    op.submit(name, c.topology.node(name).cpus * 3, 60.0)
                time.sleep(1.5)
                busy = sum(n["running"] for n in op.echo()["nodes"])
            print(f"load: {busy} busy slots on {os.cpu_count()} cores")
            name = f"echofinn echo, full load ({args.nodes})"
            print(summary(name, echo_waves(c.topology, args.waves, name), ref))
    with tempfile.TemporaryDirectory() as tmp, Cluster(8, tmp, seed_toml()) as c:
        name = "echofinn echo, seed tree (8)"
        print(summary(name, echo_waves(c.topology, args.waves, name), ref))
    if args.security:
        security_cost(args.nodes, args.waves, ref)
    if args.big:
        with tempfile.TemporaryDirectory() as tmp, Cluster(args.big, tmp) as c:
            print(f"ctl start ({args.big} nodes): {c.start_s:.2f} s")
            name = f"echofinn echo, idle ({args.big})"
            print(summary(name, echo_waves(c.topology, 20, name), ref))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
