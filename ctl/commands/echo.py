"""``ctl echo [-t T] [--from NODE] [--json]``: one echo wave over the running cluster.

Sends ``echo.start`` to the initiator (default: the first source node); the wave runs on
the undirected topology and comes back with every node's state along the wave's spanning
tree. Prints that tree (cpus, running, queued, done, load per CPU, measured CPU%), the
message count (2|E| on a healthy cluster) and the wave's own latency (from the start
message to the result, without process start-up).

A dead, stopped or cut-off node does not stop the wave: each node gives up on silent
neighbours at its share of ``--timeout`` and echoes what it has, so
the result holds every node that could be reached, and the nodes it lacks are named
(``"missing"`` in ``--json``). A node cut off by a refused key is named with the reason,
e.g. ``subserviate refused pical's key (a stale or foreign key)``, from what the nodes
and the operator's own handshakes report (``"refused"``: [who refused, whose key] pairs)
rather than as a bare "no answer". Exit status: 0 when every node answered, 1 when some
are missing, 2 for bad arguments.

``--trace FILE`` then asks every node for its recorded steps of the wave (a cluster
started with ``--record``) and writes the trace to FILE; a node that does not answer is named, and the
exit status is 1.
"""

ORDER = 20
HELP = "run one echo wave: every node's state along the wave's spanning tree"
DESCRIPTION = __doc__


def add_arguments(p):
    from ctl.argtypes import seconds
    from ctl.common import add_json_option, add_topology_option, add_trace_option

    add_topology_option(p)
    p.add_argument("--from", dest="initiator", metavar="NODE", help="the initiator (default: the first source node)")
    p.add_argument("--timeout", type=seconds("--timeout", 600), default=5.0, metavar="SECONDS", help="give up after this long (default 5)")
    add_trace_option(p)
    add_json_option(p)


def run(args) -> int:
    import sys

    from ctl.common import resolve_cluster, save_trace
    from ctl.output import format_tree, print_json
    from daemon import trace
    from daemon.core.snapshot import refusal_text, unexplained
    from daemon.operator import Operator

    topology = resolve_cluster(args)
    if args.initiator is not None:
        topology.node(args.initiator)
    if args.trace:
        trace.check_path(args.trace)
    traced = True
    with Operator(topology, timeout=args.timeout) as op:
        snap = op.echo(args.initiator)
        if args.trace:
            traced = save_trace(op, args.trace, [snap["wave"]], snap["wave"], "echo")
    missing = snap["missing"]
    if args.json:
        print_json(snap)
        return 1 if missing or not traced else 0
    print("\n".join(format_tree(snap, topology)))
    total = len(topology.names)
    links = sum(len(topology.neighbours(n)) for n in topology.names) // 2  # a<->b is one link
    print(f"\necho wave {snap['wave']} from {snap['initiator']}: {len(snap['nodes'])}/{total} nodes, "
          f"{snap['messages']} messages (2|E| = {2 * links} on the undirected view), {snap['elapsed_ms']:.2f} ms")
    for pair in snap["refused"]:
        print(f"ctl echo: {refusal_text(*pair)}", file=sys.stderr)
    silent = unexplained(missing, snap["refused"])
    if silent:
        print(f"ctl echo: no answer from {', '.join(silent)} within the wave's deadline "
              f"({args.timeout:g} s); `ctl status` shows their processes", file=sys.stderr)
    if missing:
        return 1
    return 0 if traced else 1
