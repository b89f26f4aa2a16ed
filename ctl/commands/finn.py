"""``ctl finn [-t T] [--tasks K] [--cost S] [--from NODE] [--json]``: one Finn wave.

Finn's algorithm runs on the directed topology. The operator starts it at one node of
every source component (on a DAG: every source; on a strongly connected graph: one node,
``--from`` picks it). Each node enqueues K tasks when it decides, and tells the operator.
The command waits until every node has decided, or names those that did not in time.
``--trace FILE`` then writes every node's recorded steps of the wave to FILE (as ``ctl
echo --trace``); Finn's last sets may still be on their way then (a send the trace shows
unreceived).
"""

ORDER = 40
HELP = "run one Finn wave: each node enqueues K tasks as it decides"
DESCRIPTION = __doc__


def add_arguments(p):
    from ctl.argtypes import integer, seconds
    from ctl.common import add_json_option, add_topology_option, add_trace_option
    from daemon.core.messages import MAX_COST, MAX_TASKS  # what one finn.start message may carry

    add_topology_option(p)
    p.add_argument("--tasks", "-k", type=integer("--tasks", 0, MAX_TASKS), default=1, metavar="K", help="tasks each node enqueues when it decides (default 1; 0 = just the wave)")
    p.add_argument("--cost", type=seconds("--cost", MAX_COST), metavar="SECONDS", help="cost of each task (default: the cluster's task_time)")
    p.add_argument("--from", dest="initiator", metavar="NODE", help="initiate here (only for a graph with one source component)")
    p.add_argument("--timeout", type=seconds("--timeout", 600), default=5.0, metavar="SECONDS", help="how long to wait for every decision (default 5)")
    add_trace_option(p)
    add_json_option(p)


def _reach(topology, start: str) -> int:
    """How many nodes ``start`` reaches along the edges (itself included)."""
    seen, todo = {start}, [start]
    while todo:
        for child in topology.children(todo.pop()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return len(seen)


def run(args) -> int:
    from ctl.common import resolve_cluster, save_trace
    from ctl.output import print_json
    from daemon import trace
    from daemon.errors import BadInput
    from daemon.operator import Operator

    topology = resolve_cluster(args)
    initiators = None
    if args.initiator is not None:
        topology.node(args.initiator)
        comps = topology.finn_initiators()
        if len(comps) > 1:
            raise BadInput(f"--from works on a graph with one source component; this one has {len(comps)} ({', '.join(comps)}), and each must initiate")
        if _reach(topology, args.initiator) < len(topology.names):
            raise BadInput(f"a Finn wave from {args.initiator} would not reach every node (it must start in the "
                           f"source component, e.g. at {comps[0]}); leave out --from to start at {comps[0]}")
        initiators = [args.initiator]
    if args.trace:
        trace.check_path(args.trace)
    traced = True
    with Operator(topology, timeout=args.timeout) as op:
        res = op.finn(args.tasks, args.cost, initiators)
        if args.trace:
            traced = save_trace(op, args.trace, [res["wave"]], res["wave"], "finn")
    if args.json:
        print_json(res)
    else:
        print(f"Finn wave {res['wave']} initiated at {', '.join(res['initiators'])}")
        print(f"decided: {len(res['decided'])}/{len(topology.names)} nodes, {res['messages']} messages, "
              f"{res['enqueued']} task(s) enqueued, {res['elapsed_ms']:.2f} ms")
        if res["undecided"]:
            print(f"undecided within {args.timeout:g} s: {', '.join(res['undecided'])}")
        if res["unreachable"]:
            print(f"not answering: {', '.join(res['unreachable'])}")
    return 0 if not res["undecided"] and traced else 1
