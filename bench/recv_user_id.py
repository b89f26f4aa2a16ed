"""What reading a message's User-Id costs a node's receive loop (daemon/security.py).

    python bench/recv_user_id.py [--batch 800] [--rounds 30]

One ROUTER and one DEALER over TCP on 127.0.0.1 in this process, plain and with CURVE (a
ZAP handler admitting any key, so that messages carry a User-Id). The DEALER queues a
batch of 200-byte messages; the ROUTER's receive of the whole batch is timed, per
message, best of ``--rounds``: only the receiving call's own cost, with the CURVE
decryption done by libzmq's I/O thread left out (the echo benchmark has the whole).

Ways to receive: ``recv_multipart()`` (no User-Id, the loop without CURVE);
``recv_multipart(copy=False)`` then ``Frame.get("User-Id")``; and two ``recv(copy=False)``
with the body's ``more`` flag (:func:`daemon.security.recv_with_user_id`, what nodes do).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import zmq  # noqa: E402
from zmq.auth.thread import ThreadAuthenticator  # noqa: E402

from daemon.security import recv_with_user_id  # noqa: E402


def pair(ctx, curve: bool):
    router, dealer = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    if curve:
        server_public, server_secret = zmq.curve_keypair()
        router.curve_secretkey, router.curve_publickey, router.curve_server = server_secret, server_public, True
        dealer.curve_publickey, dealer.curve_secretkey = zmq.curve_keypair()
        dealer.curve_serverkey = server_public
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealer.setsockopt(zmq.IDENTITY, b"root")
    dealer.connect(f"tcp://127.0.0.1:{port}")
    dealer.send(b"hello")
    router.recv_multipart()  # connected (and, with CURVE, authenticated)
    return router, dealer


def per_message_us(router, dealer, receive, batch: int, rounds: int) -> float:
    body = b"y" * 200
    best = float("inf")
    for _ in range(rounds):
        for _ in range(batch):  # below the high-water marks: never blocks
            dealer.send(body)
        while not router.poll(0):
            time.sleep(0.001)
        time.sleep(0.01)  # let the I/O thread queue the rest
        t = time.perf_counter()
        for _ in range(batch):
            receive(router)
        best = min(best, (time.perf_counter() - t) / batch * 1e6)
    return best


def copy_false_get(sock):
    parts = sock.recv_multipart(copy=False)
    return [p.bytes for p in parts], parts[-1].get("User-Id")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=800)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    ctx = zmq.Context()
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=zmq.auth.CURVE_ALLOW_ANY)
    try:
        print(f"python {sys.version.split()[0]}, pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}")
        cases = [
            ("plain, recv_multipart()", False, lambda s: s.recv_multipart()),
            ("CURVE, recv_multipart()", True, lambda s: s.recv_multipart()),
            ("CURVE, recv_multipart(copy=False) + get", True, copy_false_get),
            ("CURVE, recv_with_user_id (nodes)", True, recv_with_user_id),
        ]
        for name, curve, receive in cases:
            router, dealer = pair(ctx, curve)
            us = per_message_us(router, dealer, receive, args.batch, args.rounds)
            print(f"{name:<42} {us:6.2f} us per message")
            router.close(0)
            dealer.close(0)
    finally:
        auth.stop()
        ctx.destroy(linger=0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
