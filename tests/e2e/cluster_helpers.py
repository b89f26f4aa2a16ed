"""Helpers the e2e test modules share (a test module imports no other test module): the
seed topology's node names, a node's entry in its cluster's record, a squatted port."""

from __future__ import annotations

import contextlib
import socket

SEED_NODES = ["root", "affixed", "haywagon", "tubularia", "preindemnifying", "subserviate", "pical", "outwhirled"]


def node_entry(cluster_env, name: str, cluster: str = "seed") -> dict:
    try:
        return cluster_env.record(cluster)["nodes"][name]
    except (OSError, ValueError, KeyError):
        return {}  # between the supervisor's atomic writes there is always a whole file


@contextlib.contextmanager
def squat(port: int):
    """Hold ``port`` with a listening socket, as another program would. SO_REUSEADDR: an
    earlier test's cluster may have left the port in TIME_WAIT, which is no obstacle to
    ZeroMQ (it sets the option too) and must be none here."""
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        yield
