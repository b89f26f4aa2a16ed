"""The floor of an echo wave: a raw pyzmq relay tree, the least a wave can cost here.

One process per node (forked), ROUTER down to its children and DEALER up to its parent,
the same balanced tree as the cluster's (node i's parent is (i - 1) // fanout); a wave
is a message sent down and a msgpack list of small dicts echoed up, each node adding its
own. No framework, no state machine, no sampling. :class:`Floor` starts the tree once
and measures as many rounds as asked, paced like the cluster (``gap`` seconds between
waves), so a run can measure it idle and again under load.
"""

from __future__ import annotations

import multiprocessing as mp
import time

from ctl.bench.cluster import BenchError, free_base_port, tree_parents


def _relay(i: int, n: int, fanout: int, base: int) -> None:
    import msgpack
    import zmq

    ctx = zmq.Context()
    kids = [c for c in range(fanout * i + 1, fanout * i + fanout + 1) if c < n]
    down = ctx.socket(zmq.ROUTER)
    down.bind(f"tcp://127.0.0.1:{base + i}")
    up = ctx.socket(zmq.DEALER)
    up.setsockopt(zmq.IDENTITY, str(i).encode())
    parent = tree_parents(n, fanout)[i]
    up.connect(f"tcp://127.0.0.1:{base + (parent if parent is not None else n)}")
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


class Floor:
    """``with Floor(n, fanout) as f: f.waves(k, gap)`` -> latencies in ms."""

    def __init__(self, n: int, fanout: int = 2):
        self.n, self.fanout = n, fanout
        self.procs: list = []

    def __enter__(self):
        import zmq

        base = free_base_port(self.n)
        fork = mp.get_context("fork")
        self.procs = [
            fork.Process(target=_relay, args=(i, self.n, self.fanout, base), daemon=True) for i in range(self.n)
        ]
        try:
            for p in self.procs:
                p.start()
            self.ctx = zmq.Context()
            self.driver = self.ctx.socket(zmq.ROUTER)
            self.driver.bind(f"tcp://127.0.0.1:{base + self.n}")
            self.driver.setsockopt(zmq.RCVTIMEO, int(60_000 + 100 * self.n))
            self.driver.recv_multipart()  # ready: the whole tree is connected
            self.driver.setsockopt(zmq.RCVTIMEO, 10_000)
        except BaseException:
            self.__exit__()
            raise
        return self

    def waves(self, count: int, gap: float = 0.0) -> list[float]:
        import msgpack

        lat = []
        for w in range(count):
            if gap:
                time.sleep(gap)
            t = time.perf_counter()
            self.driver.send_multipart([b"0", msgpack.packb({"wave": w})])
            _, rep = self.driver.recv_multipart()
            lat.append((time.perf_counter() - t) * 1000)
            if len(msgpack.unpackb(rep)) != self.n:
                raise BenchError(f"floor: a wave came back with {len(msgpack.unpackb(rep))} of {self.n} entries")
        return lat

    def __exit__(self, *exc):
        try:
            if getattr(self, "driver", None) is not None:
                self.driver.send_multipart([b"0", b"stop"])
        except Exception:  # noqa: BLE001 — the tree may be broken; the joins below end it
            pass
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
        if getattr(self, "ctx", None) is not None:
            self.ctx.destroy(linger=0)
