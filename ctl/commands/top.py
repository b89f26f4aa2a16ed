"""``ctl top [-t T] [--interval S] [--timeout S] [--sort S] [--filter TEXT] [--once] [--no-color] [--ascii] [--width W --height H]``

The live tree of a running cluster, full screen: an echo wave every interval (default
1 s) draws the wave's spanning tree with each node's cpus, running/queued and done
tasks, load per CPU as a bar (green → yellow → red), the CPU% psutil measured, and a
sparkline of its recent load; DAG and cycle edges the tree does not show are listed
("also ← x, y"). A node that stops answering stays on screen, dimmed, with since when,
or with the supervisor's state for it (``cluster.json``: BACKOFF while it waits to be
restarted, FATAL once it crashed too often, with its restarts and last exit). A node
stopped by ``ctl stop NODE`` is marked stopped (■, not the dead ✗): STOPPED by the
operator, until ``ctl start NODE``.
The header shows nodes up, cpus, tasks, the imbalance (the largest work per CPU over the average) and its
trend, the last wave's messages and latency, the last balancing round and Finn wave — as
the nodes' samples report them, whoever started them (``ctl rebalance``, the
supervisor's timer, ``ctl finn``, another ``ctl top``).

keys:
  q quit                     ↑ ↓ select a node        PgUp PgDn scroll
  r one balancing round      a automatic balancing     Enter, space collapse/expand
  f a Finn wave (one task per node)                    t submit tasks at the selection
  s sort: tree, topology, name, load, queue            / filter nodes by name
  p pause                    ? help

Rows: the tree is the echo wave's spanning tree, which on a DAG or a graph with cycles
may change from wave to wave; the other orders (s, or --sort) are flat lists that keep
still: the topology file's order, by name, by load per CPU or by queue (the largest
first). / filters by a part of the name (in the tree, a match keeps its ancestors).

Messages: ``echo.start`` every interval (``rebalance``'s echo, move, echo while automatic
balancing is on); ``finn.start`` on f; ``submit`` on s; all with the operator key, as ``ctl`` sends them.

--once prints one frame to stdout and exits (no terminal needed; plain text when stdout
is not a terminal); its size is --width (default: the terminal's, else 100) by
--height (default: tall enough for every node). Colour follows the terminal (24-bit,
256 or 16 colours); NO_COLOR or --no-color keep bold/dim/reverse but no colour.
"""

from __future__ import annotations

import sys

ORDER = 60
HELP = "the live tree of the cluster in the terminal (echo wave every interval)"
DESCRIPTION = __doc__


def add_arguments(p) -> None:
    from ctl.argtypes import integer, seconds
    from ctl.common import add_topology_option
    from ctl.top.view import SORTS


    add_topology_option(p)
    p.add_argument("--interval", type=seconds("--interval", 3600), default=1.0, metavar="SECONDS",
                   help="seconds between echo waves (default 1)")
    p.add_argument("--timeout", type=seconds("--timeout", 600), default=2.0, metavar="SECONDS",
                   help="a wave not back after this long marks the silent nodes (default 2)")
    p.add_argument("--once", action="store_true", help="print one frame to stdout and exit")
    p.add_argument("--no-color", action="store_true", help="no colour (NO_COLOR does the same)")
    p.add_argument("--ascii", action="store_true", help="ASCII instead of box drawing and blocks")
    p.add_argument("--sort", choices=SORTS, default="tree",
                   help="the rows' order (default tree: the echo wave's spanning tree, which may change from "
                        "wave to wave on a DAG or a cyclic graph; the others keep rows still; the key s cycles)")
    p.add_argument("--filter", metavar="TEXT", default="",
                   help="show only the nodes whose name holds TEXT (in the tree, with their ancestors; the key / edits it)")
    p.add_argument("--width", type=integer("--width", 1), metavar="W", help="--once: frame width in columns")
    p.add_argument("--height", type=integer("--height", 1), metavar="H", help="--once: frame height in lines")


def run(args) -> int:
    from ctl.common import resolve_cluster
    from daemon.errors import BadInput, UserError
    from daemon.operator import Operator

    if not args.once and (args.width or args.height):
        raise BadInput("--width and --height size the frame of --once; the live view fills the terminal")
    topology = resolve_cluster(args)

    def make_operator():
        return Operator(topology, timeout=args.timeout)

    if args.once:
        return _once(args, topology, make_operator)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError("ctl top needs a terminal on stdin and stdout; use --once to print one frame")
    from ctl.top import loop

    return loop.run(topology, make_operator, interval=args.interval, no_color=args.no_color,
                    glyphs="ascii" if args.ascii else None, sort=args.sort, name_filter=args.filter)


def _once(args, topology, make_operator) -> int:
    """One echo wave, one frame on stdout. A wave that times out still prints the frame
    (silent nodes marked), then fails with the operator's message."""
    import time

    from ctl.top import loop
    from ctl.top.render import full_height, render
    from ctl.top.view import ViewState, roster_from_topology
    from daemon.operator import WaveTimeout

    view = ViewState(roster=roster_from_topology(topology), cluster=topology.cluster.name, interactive=False,
                     sort=args.sort, filter=args.filter)
    view.observe_supervisor(loop.read_record(topology.cluster.name))
    snapshot, failure = None, None
    with make_operator() as op:
        try:
            snapshot = op.echo()
            view.observe(snapshot, time.time())
        except WaveTimeout as exc:
            view.observe_timeout(exc.unreachable, time.time(), str(exc))
            failure = exc
    term = loop.make_terminal(sys.stdout)
    color = loop.color_mode(term, args.no_color)
    glyphs = "ascii" if args.ascii else loop.glyph_mode(encoding=sys.stdout.encoding)
    width = args.width or (term.width if term.is_a_tty else 100)
    height = args.height or full_height(snapshot, view)
    lines = render(snapshot, width, height, view=view, color=color, glyphs=glyphs, now=time.time())
    sys.stdout.write("\n".join(line.rstrip() for line in lines) + "\n")
    sys.stdout.flush()
    if failure is not None:
        raise failure
    if snapshot["missing"]:
        from daemon.core.snapshot import refusal_text, unexplained

        for pair in snapshot["refused"]:
            print(f"ctl top: {refusal_text(*pair)}", file=sys.stderr)
        silent = unexplained(snapshot["missing"], snapshot["refused"])
        if silent:
            print(f"ctl top: no answer from {', '.join(silent)} within the wave's deadline", file=sys.stderr)
        return 1
    return 0
