"""``ctl trace last|show|check|convert``: traces of waves — fetched from every node's
flight recorder, or read from a file, offline.

::

    ctl trace last    FILE [-t T] [--timeout S]
    ctl trace show    FILE [--json]
    ctl trace check   FILE [--json]
    ctl trace convert FILE OUT [OUT ...]

Every node of a cluster that records (``[cluster] record = true``, or ``ctl start
--record``) keeps its latest steps in a flight recorder (daemon/trace/recorder.py): each
message it handled, what it sent, what it decided, its queue. ``last`` asks every node
which waves it saw last, picks the newest of them all (by the start stamp in its id: an
echo, a Finn wave, or a balancing round's moves), fetches every node's steps of that
wave and writes the trace to FILE, in the format its suffix names (daemon/trace/formats.py:
.etrace raw, .json for Perfetto, .shiviz, .svg, .png). Nodes that do not answer within
the timeout are named; the exit status is then 1.

``show``, ``check`` and ``convert`` read a raw trace (``.etrace`` / ``.etrace.json``, the
model of daemon/trace/model.py) from ``ctl trace last``, ``ctl echo|finn|rebalance
--trace``, ``ctl wave KIND --trace`` or ``ctl sim echo|finn|chaos --trace``, and send
nothing to any cluster.
``show`` prints each wave's critical path — the causal chain that ends at its decision,
each hop split into the sender's handler, wire and queue, and the receiver's handler
(daemon/trace/report.py) — the messages per node and the lost ones. ``check`` judges the
wave properties (daemon/trace/check.py: echo's and Finn's own; for any other kind the
rules every kind keeps and the kind's own check on the decisions' results): exit 0 with
a one-line summary, exit 1 naming each violation (rule, node, step). ``convert`` writes the trace again in the formats the
suffixes name. Exit 2 for a file that is not a trace, naming the file, step and field.
"""

from __future__ import annotations

import argparse
import textwrap

ORDER = 72
HELP = "traces of waves: fetch one from the nodes' flight recorders; show, check or convert a trace file"
DESCRIPTION = """\
Fetch the trace of the newest wave from every node's flight recorder (the cluster must
record: [cluster] record = true, or ctl start --record), or read a trace file (a raw
.etrace / .etrace.json from ctl trace last, ctl echo|finn|rebalance --trace, ctl wave
KIND --trace or ctl sim ... --trace) and show its critical path, check the wave's
properties (for a kind other than echo and Finn: also the kind's own check of its
decisions' results), or write it again as Perfetto JSON, ShiViz, SVG or PNG.

examples:
  ctl trace last /tmp/last.etrace
  ctl sim echo topologies/seed.toml --seed 1 --trace /tmp/echo.etrace
  ctl trace show /tmp/echo.etrace
  ctl trace check /tmp/echo.etrace
  ctl trace convert /tmp/echo.etrace /tmp/echo.json /tmp/echo.svg   (open the .json at ui.perfetto.dev)
"""


def _described(text: str, example: str) -> str:
    return f"{textwrap.fill(text, 88)}\n\nexample:\n  {example}"


def _add_file(p, json_too: bool = True) -> None:
    p.add_argument("file", metavar="FILE", help="a raw trace (.etrace, .etrace.json)")
    if json_too:
        p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _add_last(p):
    from ctl.argtypes import seconds
    from ctl.common import add_topology_option

    p.add_argument("file", metavar="FILE",
                   help="where to write the trace; its suffix picks the format (.etrace, .json, .svg, ...)")
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
                                f"{op.trace_errors[topology.names[0]]}; start it with `ctl start --record`")
            who = f" (no answer from {', '.join(silent)})" if silent else ""
            raise UserError(f"no node of cluster {topology.cluster.name} has seen a wave yet{who}")
        return 0 if save_trace(op, args.file, [wave], wave, kind_of(wave)) else 1


def _add_convert(p) -> None:
    _add_file(p, json_too=False)
    p.add_argument("outs", nargs="+", metavar="OUT", help="a file to write; its suffix picks the format")


def _run_convert(args) -> int:
    from daemon.trace import check_path, write
    from daemon.trace.model import load

    trace = load(args.file)
    for out in args.outs:
        check_path(out)  # refuse an unknown suffix before writing anything
    for out in args.outs:
        write(trace, out)
        print(f"wrote {out}")
    return 0


def _run_show(args) -> int:
    from daemon.trace.model import load
    from daemon.trace.report import format_report, report

    r = report(load(args.file))
    if args.json:
        from ctl.output import print_json

        print_json(r)
    else:
        print(format_report(r))
    return 0


def _run_check(args) -> int:
    from daemon.trace.check import check, summary
    from daemon.trace.model import load

    trace = load(args.file)
    violations, waves = check(trace)
    if args.json:
        from ctl.output import print_json

        print_json({"ok": not violations,
                    "violations": [{"rule": v.rule, "wave": v.wave, "node": v.node, "step": v.step, "text": v.text}
                                   for v in violations],
                    "waves": [{"wave": w.wave, "kind": w.kind, "messages": w.messages, "decisions": w.decisions}
                              for w in waves]})
    elif violations:
        for v in violations:
            print(f"violation {v}")
        print(f"{args.file}: {len(violations)} violation(s)")
    else:
        print(f"{args.file}: {summary(waves, trace)}")
    return 1 if violations else 0


# Each subcommand is one entry: name -> (help, description, a function adding its
# arguments, one running it).
SUBCOMMANDS = {
    "last": ("fetch the trace of the newest wave any node saw",
             _described("Ask every node which waves it saw last, pick the newest (by the start stamp in its id), "
                        "fetch every node's recorded steps of it and write the trace to FILE, in the format its "
                        "suffix names (.etrace raw, .json Perfetto, .shiviz, .svg, .png). The cluster must record "
                        "its steps ([cluster] record = true, or ctl start --record).",
                        "ctl trace last /tmp/last.etrace"),
             _add_last, _run_last),
    "show": ("critical path, messages per node, lost messages",
             _described("Show each wave's critical path (the causal chain that ends at its decision, each hop "
                        "split into sender's handler, wire+queue and receiver's handler), the messages per node "
                        "and the lost ones.", "ctl trace show /tmp/echo.etrace --json"),
             _add_file, _run_show),
    "check": ("the wave properties (Tel, def. 6.2; echo; Finn)",
              _described("Check the wave properties: at least one decision, each causally after a step at every "
                         "node (Finn: every ancestor); echo: 2|E| messages, one each way per link, the fathers a "
                         "spanning tree, only the initiator decides; Finn: every node decides once, at most 2N "
                         "messages per channel. Exit 1 naming each violation.", "ctl trace check /tmp/echo.etrace"),
              _add_file, _run_check),
    "convert": ("write the trace as Perfetto JSON, ShiViz, SVG, PNG or raw",
                _described("Write the trace again in the format each OUT's suffix names: .json (Perfetto: "
                           "ui.perfetto.dev, Open trace file), .shiviz, .svg, .png, .etrace, .etrace.json.",
                           "ctl trace convert /tmp/echo.etrace /tmp/echo.json /tmp/echo.svg"),
                _add_convert, _run_convert),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="trace_command", metavar="SUBCOMMAND", required=True)
    for name, (help_text, description, add, run_sub) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=description,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        add(sp)
        sp.set_defaults(_trace_run=run_sub)


def run(args: argparse.Namespace) -> int:
    return args._trace_run(args)
