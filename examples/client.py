"""A client of an echofinn cluster written from PROTOCOL.md alone (pyzmq and msgpack only).

    python examples/client.py RUN_DIR [--tasks N]

RUN_DIR is a running cluster's run directory (``ctl list`` shows it). The client
connects to every node's operator port (with CURVE when the run directory holds keys),
pings them, submits N tasks to the first node, runs an echo wave there and prints each
node the echo reports with its father and load.
"""

import json
import os
import secrets
import sys
import time
from pathlib import Path

import msgpack
import zmq

VERSION = 2


def read_key(path: Path, name: str) -> bytes:
    """A value (public-key or secret-key) of a ZeroMQ certificate file."""
    for line in path.read_text().splitlines():
        key, _, value = line.strip().partition("=")
        if key.strip() == name:
            return value.strip().strip('"').encode()
    raise SystemExit(f"{path}: no {name}")


def main(run_dir: Path, tasks: int) -> int:
    record = json.loads((run_dir / "cluster.json").read_text())
    nodes = {name: entry["operator_endpoint"] for name, entry in record["nodes"].items()}
    keys = run_dir / "keys"
    curve = (keys / "operator.key_secret").exists()
    ctx = zmq.Context()
    me = f"example-{os.getpid()}".encode()
    socks = {}
    for name, endpoint in nodes.items():
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTING_ID, me)
        if curve:
            sock.curve_publickey = read_key(keys / "operator.key_secret", "public-key")
            sock.curve_secretkey = read_key(keys / "operator.key_secret", "secret-key")
            sock.curve_serverkey = read_key(keys / "nodes" / f"{name}.key", "public-key")
        sock.connect(endpoint)
        socks[name] = sock
    ids = iter(range(1, 1 << 62))

    def send(name, kind, /, **fields):
        socks[name].send(msgpack.packb({"v": VERSION, "t": kind, "e": 0, **fields}, use_bin_type=True))

    def answer(name, accept, timeout=10.0):
        """The first message from ``name`` that ``accept`` takes, within ``timeout``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if socks[name].poll(int(left * 1000)):
                msg = msgpack.unpackb(socks[name].recv(), raw=False)
                if accept(msg):
                    return msg
        raise SystemExit(f"node {name}: no answer within {timeout:g} s")

    for name in nodes:  # ping first: a node can answer only once it knows the route back
        rid = next(ids)
        send(name, "ping", id=rid)
        pong = answer(name, lambda msg, rid=rid: msg["t"] == "pong" and msg["id"] == rid)
        print(f"pong from {pong['name']} (pid {pong['pid']})")
    first = next(iter(nodes))
    rid = next(ids)
    send(first, "submit", tasks=tasks, cost=0.5, label="example", id=rid)
    reply = answer(first, lambda msg: msg["t"] in ("submit.ok", "error") and msg["id"] == rid)
    if reply["t"] == "error":
        raise SystemExit(f"submit refused: {reply['code']}: {reply['text']}")
    print(f"submitted {len(reply['ids'])} tasks to {first}")
    wave, rid = f"e-{time.time_ns():x}-{secrets.token_hex(4)}", next(ids)
    send(first, "wave.start", wave=wave, kind="echo", params={"detail": False}, timeout=5.0, id=rid)
    decided = lambda msg: msg["t"] == "wave.decided" and msg["wave"] == wave  # noqa: E731
    reply = answer(first, lambda msg: decided(msg) or (msg["t"] == "error" and msg["id"] == rid))
    if reply["t"] == "error":
        raise SystemExit(f"echo refused: {reply['code']}: {reply['text']}")
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(reply["result"])
    entries = list(unpacker)
    print(f"echo {wave} reached {len(entries)} nodes:")
    for node, father, state in entries:
        print(f"  {node:<16} father {father or '-':<16} load {state.get('load', 0):.2f}")
    ctx.destroy(linger=0)
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    count = int(sys.argv[sys.argv.index("--tasks") + 1]) if "--tasks" in sys.argv else 3
    sys.exit(main(Path(sys.argv[1]), count))
