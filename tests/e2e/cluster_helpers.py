"""Helpers the e2e test modules share (a test module imports no other test module): the
seed topology's node names, a node's entry in its cluster's record, a squatted port, a
child started as from a terminal."""

from __future__ import annotations

import contextlib
import signal
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


def as_from_a_terminal() -> None:
    """``preexec_fn`` for a command a test stops with Ctrl-C (SIGINT): SIGINT and SIGQUIT
    back to their defaults in the child, as a shell gives a foreground command. A test run
    started as a background job of a non-interactive shell has them ignored, and Python
    does not turn an ignored SIGINT into KeyboardInterrupt: the Ctrl-C would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
