"""What every ZeroMQ socket of the cluster is given, nodes' and operators' alike
(ARCHITECTURE.md, "Sockets")."""

from __future__ import annotations

import zmq

from daemon.wire import MAX_FRAME


def configure_socket(sock: zmq.Socket) -> None:
    """LINGER 0 (closing never waits on unsent messages) and MAXMSGSIZE (a peer that
    sends more than one frame may hold is cut off)."""
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)
