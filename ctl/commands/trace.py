"""``ctl trace SUBCOMMAND``: traces of waves, as the nodes recorded them.

Every node keeps its latest steps in a flight recorder (daemon/trace/recorder.py):
each message it handled, what it sent, what it decided, its queue.

``ctl trace last FILE [-t T] [--timeout S]`` asks every node which waves it saw last,
picks the newest of them all (by the start stamp in its id: an echo, a Finn wave, or a
balancing round's moves), fetches every node's steps of that wave and writes the trace
to FILE (``.etrace`` or ``.etrace.json``: the raw trace, JSON). Nodes that do not answer
within the timeout are named; the exit status is then 1.
"""

import textwrap

ORDER = 72
HELP = "traces of waves, fetched from every node's flight recorder"
DESCRIPTION = __doc__


def _add_last(p):
    from ctl.argtypes import seconds
    from ctl.common import add_topology_option

    p.add_argument("file", metavar="FILE", help="where to write the trace (.etrace or .etrace.json)")
    add_topology_option(p)
    p.add_argument("--timeout", type=seconds("--timeout", 600), default=5.0, metavar="SECONDS",
                   help="how long to wait for the nodes' answers (default 5)")


def _run_last(args) -> int:
    from ctl.common import resolve_topology, save_trace
    from daemon import trace
    from daemon.errors import UserError
    from daemon.operator import Operator
    from daemon.trace.recorder import kind_of

    topology = resolve_topology(args)
    trace.check_path(args.file)
    with Operator(topology, timeout=args.timeout) as op:
        wave, silent = op.last_wave()
        if wave is None:
            if op.trace_errors and len(op.trace_errors) == len(topology.names):  # the same answer from all
                raise UserError(f"no node of cluster {topology.cluster.name} records its steps: "
                                f"{next(iter(op.trace_errors.values()))}; start it with `ctl start --record`")
            who = f" (no answer from {', '.join(silent)})" if silent else ""
            raise UserError(f"no node of cluster {topology.cluster.name} has seen a wave yet{who}")
        return 0 if save_trace(op, args.file, [wave], wave, kind_of(wave)) else 1


# Each subcommand is one entry: name -> (help, description, a function adding its
# arguments, one running it).
SUBCOMMANDS = {
    "last": ("fetch the trace of the newest wave any node saw",
             textwrap.fill("Ask every node which waves it saw last, pick the newest (by the start stamp in its "
                           "id), fetch every node's recorded steps of it and write the trace to FILE (.etrace or "
                           ".etrace.json). The cluster must record its steps ([cluster] record = true, or ctl "
                           "start --record).", 88) + "\n\nexample:\n  ctl trace last /tmp/last.etrace",
             _add_last, _run_last),
}


def add_arguments(parser):
    import argparse

    sub = parser.add_subparsers(dest="trace_command", metavar="SUBCOMMAND", required=True)
    for name, (help_text, description, add, run_sub) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=description,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        add(sp)
        sp.set_defaults(_trace_run=run_sub)


def run(args) -> int:
    return args._trace_run(args)
