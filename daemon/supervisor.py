"""``python -m daemon.supervisor``: the entry point of one cluster's supervisor on this host.

``python -m daemon.supervisor --topology FILE --run-dir DIR [--notify-fd FD] [--record]``
is what ``ctl start`` launches, detached, and the command line by which daemon/orphans.py
and daemon/rundir.py recognise a supervisor. The supervisor itself is
daemon/cluster/supervisor.py; here are only its arguments and its progress lines:
whoever started it follows them (``starting N``, ``ready NODE PID ENDPOINT``, ``error
MESSAGE``, then ``running PID`` or ``failed N``) on ``--notify-fd``, else on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from daemon.cluster.supervisor import Progress, Supervisor
from daemon.errors import UserError
from daemon.topology import TopologyError, load, recording


def notify_fd_progress(fd: int) -> Progress:
    """Progress lines written to ``fd``, which is closed after the last one (``running``
    or ``failed``). A reader that went away does not stop the cluster."""
    is_open = True

    def progress(line: str) -> None:
        nonlocal is_open
        if not is_open:
            return
        last = line.startswith(("running", "failed"))
        try:
            os.write(fd, (line + "\n").encode())
        except OSError:  # ctl start was interrupted: nobody listens; carry on
            last = True
        if last:
            os.close(fd)
            is_open = False

    return progress


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m daemon.supervisor",
        description="Start, watch and stop one cluster's node daemons on this host (started by `ctl start`).",
    )
    parser.add_argument("--topology", required=True, help="the cluster's topology file (absolute path)")
    parser.add_argument("--run-dir", required=True, help="the cluster's run directory")
    parser.add_argument("--notify-fd", type=int, help="write progress lines to this fd, closed once running or failed")
    parser.add_argument("--record", action="store_true", help="every node records its steps ([cluster] record = true)")
    args = parser.parse_args(argv)
    progress = notify_fd_progress(args.notify_fd) if args.notify_fd is not None else print
    try:
        topology = load(os.path.abspath(args.topology))
        if args.record:
            topology = recording(topology)
        return Supervisor(topology, Path(args.run_dir).absolute(), progress).run()
    except (TopologyError, UserError) as exc:
        print(f"supervisor: error: {exc}", file=sys.stderr)
        progress(f"error {exc}")
        progress("failed 0")
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
