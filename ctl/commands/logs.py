"""``ctl logs NODE|--supervisor [-n N] [-f] [-t T] [--json]``: print a node's log, or the supervisor's.

Prints the last N lines (default 10) of the node's log in the cluster's run directory,
its rotated files included when the current one holds fewer, oldest first. A node's log
tells its life (started or restarted, and what it recovered from its journal; the
supervisor's lines about it: started, ready, exited and how, restarted or given up),
each move of tasks in or out, refused frames (at most one line per kind every 10
seconds, with counts), refused keys and errors; with ``[cluster] log_level = "debug"``
also each wave it took part in and its outcome there. ``--supervisor``: the
supervisor's log instead (starts, exits and restarts of every node, balancing rounds,
the stop).

``-f`` then prints each new line as it is written, across rotations, until Ctrl-C
(exit 0). A stopped cluster's logs stay in its run directory (a new start appends to
them), and are printed the same way. An unknown node is named with the cluster's nodes (exit 2);
a log that does not exist is said with where it was looked for (exit 1).

Lines look like ``2026-12-08 02:10:11.123 node root[4242] INFO move 1a2b-3: 4 tasks out
to pical``. ``--json``: one JSON object per line (JSON Lines), ``{"time", "source",
"pid", "level", "text"}``, or ``{"text"}`` for a line that continues the one before (a
traceback).
"""

from __future__ import annotations

ORDER = 14
HELP = "print a node's log or the supervisor's, the last N lines; -f follows it"
DESCRIPTION = __doc__

FOLLOW_POLL = 0.2  # seconds between looks for new lines
BLOCK = 64 * 1024  # bytes read at a time from a file's end
MAX_LINES = 1_000_000
NAMES_SHOWN = 20  # nodes named in an unknown node's error


def add_arguments(p):
    from ctl.argtypes import integer
    from ctl.common import add_json_option, add_topology_option

    p.add_argument("node", nargs="?", metavar="NODE", help="the node whose log to print")
    p.add_argument("--supervisor", action="store_true", help="the supervisor's log instead of a node's")
    p.add_argument(
        "-n",
        "--lines",
        type=integer("--lines", 0, MAX_LINES),
        default=10,
        metavar="N",
        help=f"print the last N lines (default 10; 0 to {MAX_LINES:,})",
    )
    p.add_argument("-f", "--follow", action="store_true", help="then print new lines as they are written, until Ctrl-C")
    add_topology_option(p)
    add_json_option(p)


def run(args) -> int:
    import sys

    from ctl.common import resolve_topology
    from daemon.errors import BadInput

    if args.supervisor == (args.node is not None):
        raise BadInput(
            "name a node (ctl logs NODE) or ask for the supervisor's log (ctl logs --supervisor), "
            "not " + ("both" if args.supervisor else "neither")
        )
    topology = resolve_topology(args)
    path = log_path(topology, args.node)
    emit = _json_line if args.json else _text_line
    out = sys.stdout
    lines, offset = last_lines(path, args.lines, complete_only=args.follow)
    for line in lines:
        out.write(emit(line))
    out.flush()
    if not args.follow:
        return 0
    try:
        follow(path, offset, lambda line: (out.write(emit(line)), out.flush()))
    except KeyboardInterrupt:
        return 0
    return 0


def log_path(topology, node: str | None):
    """The file ``ctl logs`` reads: the node's log (or the supervisor's, ``node`` None) in
    the cluster's run directory, or an MPI rank's folder beside it."""
    from daemon import logs, rundir
    from daemon.errors import BadInput, UserError

    name = topology.cluster.name
    run_dir = rundir.cluster_dir(name)
    if node is None:
        path = run_dir / rundir.SUPERVISOR_LOG
        if not path.exists():
            raise UserError(
                f"cluster {name}: no supervisor log at {path}: the cluster was never started on this "
                "host, or its run directory was removed"
            )
        return path
    if node not in topology:
        names = list(topology.names)
        shown = ", ".join(names[:NAMES_SHOWN]) + (
            f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
        )
        raise BadInput(f"cluster {name} has no node {node!r}; its nodes: {shown}")
    folders = [run_dir, *sorted(run_dir.parent.glob(f"{name}.rank-*"))] if run_dir.parent.is_dir() else [run_dir]
    for folder in folders:
        path = logs.node_log_file(folder, node)
        if path.exists():
            return path
    host = topology.node(node).host
    raise UserError(
        f"node {node}: no log at {logs.node_log_file(run_dir, node)}: the cluster was never started on "
        f"this host, or its run directory was removed (the node runs on {host}; its log is on the host "
        "whose supervisor runs it)"
    )


def last_lines(path, n: int, complete_only: bool = False) -> tuple[list[str], int]:
    """The last ``n`` lines of log ``path`` and its rotated files (``path.1``, ...: older),
    oldest first, and the offset in ``path`` after the last of them. ``complete_only``:
    leave out a last line still being written (a follower prints it once whole)."""
    from daemon.logs import rotated

    with open(path, "rb") as f:
        size = f.seek(0, 2)
        lines = _tail(f, size, n + 1 if complete_only else n)
    end = size
    if complete_only and lines and not lines[-1].endswith(b"\n"):
        end -= len(lines.pop())
    lines = lines[-n:] if n else []
    for older in rotated(path)[1:]:
        if len(lines) >= n:
            break
        with open(older, "rb") as f:
            more = _tail(f, f.seek(0, 2), n - len(lines))
        lines[:0] = more
    return [line.decode("utf-8", "replace").rstrip("\n") for line in lines], end


def _tail(f, size: int, n: int) -> list[bytes]:
    """The last ``n`` lines (with their newlines) of the first ``size`` bytes of ``f``,
    read in blocks from the end."""
    if n <= 0:
        return []
    data = b""
    pos = size
    while pos > 0 and data.count(b"\n") <= n:
        step = min(BLOCK, pos)
        pos -= step
        f.seek(pos)
        data = f.read(step) + data
    parts = data.split(b"\n")  # not splitlines: a carriage return inside a line is no line break
    lines = [part + b"\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    if pos > 0:
        lines = lines[1:]  # the first may be cut
    return lines[-n:]


def follow(path, offset: int, emit, poll: float = FOLLOW_POLL, stop=None) -> None:
    """Print (``emit``) each line written to ``path`` from ``offset`` on, whole lines only;
    when the file is rotated, the rest of the old one and then the new one from its
    start. Until ``stop()`` is true (never, by default: the caller's Ctrl-C ends it)."""
    import os
    import time

    f = open(path, "rb")
    f.seek(offset)
    rest = b""
    try:
        while stop is None or not stop():
            chunk = f.read(BLOCK)
            if chunk:
                *whole, rest = (rest + chunk).split(b"\n")
                for line in whole:
                    emit(line.decode("utf-8", "replace"))
                continue
            try:
                now = os.stat(path)
            except FileNotFoundError:  # between a rotation's rename and the new file
                time.sleep(poll)
                continue
            if (now.st_dev, now.st_ino) != (os.fstat(f.fileno()).st_dev, os.fstat(f.fileno()).st_ino):
                if rest:  # the old file's last words, cut short
                    emit(rest.decode("utf-8", "replace"))
                    rest = b""
                f.close()
                f = open(path, "rb")
                continue
            if now.st_size < f.tell():  # cut short in place: from its start
                f.seek(0)
                rest = b""
                continue
            time.sleep(poll)
    finally:
        f.close()


def _text_line(line: str) -> str:
    return line + "\n"


def _json_line(line: str) -> str:
    import json

    from daemon.logs import parse

    return json.dumps(parse(line)) + "\n"
