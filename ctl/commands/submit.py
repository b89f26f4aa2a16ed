"""``ctl submit NODE [--tasks N] [--cost SECONDS] [-t T]``: enqueue tasks at one node.

The way to create imbalance: the tasks queue at NODE and wait for its CPU slots until a
balancing round (``ctl rebalance``, or the supervisor's timer) moves some of them.
"""

ORDER = 30
HELP = "enqueue N tasks at one node (creates imbalance)"
DESCRIPTION = __doc__


def add_arguments(p):
    from ctl.argtypes import integer, seconds
    from ctl.common import add_json_option, add_topology_option
    from daemon.core.messages import MAX_COST, MAX_TASKS  # what one submit message may carry


    p.add_argument("node", metavar="NODE", help="the node that gets the tasks")
    p.add_argument("--tasks", "-n", type=integer("--tasks", 1, MAX_TASKS), default=1, metavar="N", help="how many tasks (default 1)")
    p.add_argument("--cost", type=seconds("--cost", MAX_COST), metavar="SECONDS", help="seconds of CPU each task holds a slot (default: the cluster's task_time)")
    add_topology_option(p)
    add_json_option(p)


def run(args) -> int:
    from ctl.common import resolve_cluster
    from ctl.output import print_json
    from daemon.operator import Operator

    topology = resolve_cluster(args)
    topology.node(args.node)
    with Operator(topology) as op:
        res = op.submit(args.node, args.tasks, args.cost, label="ctl submit")
    if args.json:
        print_json(res)
    else:
        print(f"submitted {res['tasks']} task(s) of {res['cost']:g} s at {args.node}")
    return 0
