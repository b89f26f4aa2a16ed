"""``ctl submit NODE [--tasks N] [--cost SECONDS] [-t T]``: enqueue tasks at one node.

The way to create imbalance: the tasks queue at NODE and wait for its CPU slots until a
balancing round (``ctl rebalance``, or the supervisor's timer) moves some of them.
"""

ORDER = 30
HELP = "enqueue N tasks at one node (creates imbalance)"
DESCRIPTION = __doc__


def _positive_int(text):
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= v <= 100_000:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100000, got {v}")
    return v


def positive_float(text):
    import argparse
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (v > 0 and math.isfinite(v)) or v > 86_400:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds (at most 86400), got {text}")
    return v


def add_arguments(p):
    from ctl.common import add_json_option, add_topology_option

    p.add_argument("node", metavar="NODE", help="the node that gets the tasks")
    p.add_argument("--tasks", "-n", type=_positive_int, default=1, metavar="N", help="how many tasks (default 1)")
    p.add_argument("--cost", type=positive_float, metavar="SECONDS", help="seconds of CPU each task holds a slot (default: the cluster's task_time)")
    add_topology_option(p)
    add_json_option(p)


def run(args) -> int:
    from ctl.common import resolve_topology
    from ctl.output import print_json
    from daemon.operator import Operator

    topology = resolve_topology(args)
    topology.node(args.node)
    with Operator(topology) as op:
        res = op.submit(args.node, args.tasks, args.cost, label="ctl submit")
    if args.json:
        print_json(res)
    else:
        print(f"submitted {res['tasks']} task(s) of {res['cost']:g} s at {args.node}")
    return 0
