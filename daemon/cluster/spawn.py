"""Making a node daemon process: forked from the supervisor, or a fresh interpreter.

``python -m daemon --topology FILE --node NAME... --run-dir DIR --notify-fd FD
[--record]`` is the node daemon's command line in both cases: ``ECHOFINN_SPAWN=exec``
runs it in a new interpreter; otherwise (daemon/zygote.py) the process is forked from
the supervisor, with everything imported already, and only shows that command line. Each
is its own process group inside the supervisor's session, so a terminal's Ctrl-C reaches
the supervisor alone, which then stops the nodes in order. The process gets the write end
of its notify pipe and nothing else of the supervisor's.

A cluster started by ``ctl start`` begins with the topology's tasks only:
:func:`clear_journals` removes what a previous run left, while a process restarted within
a run recovers its nodes' queues from their journals (daemon/journal.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from daemon import zygote
from daemon.lifecycle import child_env
from daemon.node import journal_file, node_args
from daemon.topology import Topology


def node_command(topology: Topology, names: tuple[str, ...], run_dir: Path, notify_fd: int) -> list[str]:
    """The command line of the process serving ``names``."""
    assert topology.path is not None, "a supervised topology has a file (daemon/cluster/supervisor.py)"
    return [
        sys.executable,
        "-m",
        "daemon",
        "--topology",
        topology.path,
        *node_args(names),
        "--run-dir",
        str(run_dir),
        "--notify-fd",
        str(notify_fd),
        *(["--record"] if topology.cluster.record else []),  # the file may not say so (ctl start --record)
    ]


def start_process(topology: Topology, names: tuple[str, ...], run_dir: Path, notify_fd: int, log: Path):
    """Start the process serving ``names`` (a Popen, or zygote's like of one); OSError if
    none could be made."""
    if zygote.enabled():  # forked from this process, everything imported: daemon/zygote.py
        return zygote.spawn(topology, list(names), notify_fd, log, str(run_dir))
    with open(log, "ab") as out:
        return subprocess.Popen(
            node_command(topology, names, run_dir, notify_fd),
            pass_fds=(notify_fd,),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=child_env(),
            process_group=0,
        )


def clear_journals(run_dir: Path, names: list[str]) -> None:
    """Remove the journals (daemon/journal.py) a previous run left for these nodes."""
    for name in names:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(journal_file(run_dir, name) + suffix)
            except FileNotFoundError:
                pass
