"""``ctl wave NAME [--initiator N]... [--param K=V]... [--json] [--timeout S]``: one wave of
any installed kind over the running cluster; ``ctl wave --list``: the installed kinds.

A wave kind is a wave algorithm written on echofinn's wave interface, found by name among
the built-in ones and those third-party packages declare under the entry-point group
``echofinn.waves`` (the Python packaging convention pytest plugins use). The command asks the kind first whether it can run on the
cluster's topology: if not, it says why in the kind's words (not strongly connected, not
a ring, not a tree) and exits 1 without touching the cluster. Otherwise every node is
pinged, the wave is started at ``--initiator`` (repeatable; default: the kind's choice,
e.g. echo's first source node, one node of every source component for Finn) with the
``--param`` values (each checked against the kind's bound; the kind's defaults fill the
rest), and each node's decision is collected until the kind's deciders are in or
``--timeout`` (and a grace for the answers to travel) has passed. It prints each
decision (one line per deciding node, the result as JSON, cut at 160 characters), the
nodes that did not decide, and those that answer no ping.

``--list`` prints one line per kind: its name and what it does, or ``BROKEN:`` and why
for a kind that was found but could not be loaded (its module raises, or the class is
malformed); such a kind is skipped everywhere else, never fatal.

``--trace FILE`` then asks every node for its recorded steps of the wave (a cluster
started with ``--record``) and writes the trace to FILE, each decision with its result
when it is small, so that ``ctl trace check FILE`` judges the run by the kind's own
check; a node that does not answer is named, and the exit status is 1.

Exit status: 0 when the run is complete, 1 when deciders are missing, a node sent no
trace or the topology is refused, 2 for bad arguments (an unknown kind or parameter, a value out of bounds).
``ctl echo``, ``ctl finn`` and ``ctl rebalance`` remain, with their own output.
"""

ORDER = 45
HELP = "run one wave of any installed kind (ctl wave --list names them)"
DESCRIPTION = __doc__


def add_arguments(p):
    from ctl.argtypes import seconds
    from ctl.common import add_json_option, add_topology_option, add_trace_option

    add_topology_option(p)
    p.add_argument("name", nargs="?", metavar="NAME", help="the wave kind (see --list)")
    p.add_argument("--list", action="store_true", help="list the installed wave kinds, one line each")
    p.add_argument("--initiator", "--from", dest="initiators", action="append", default=[], metavar="NODE",
                   help="start the wave here (repeatable; default: the kind's choice)")
    p.add_argument("--param", dest="params", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of the kind (repeatable)")
    add_trace_option(p)
    p.add_argument("--timeout", type=seconds("--timeout", 600), default=5.0, metavar="SECONDS",
                   help="how long to wait for the decisions (default 5)")
    add_json_option(p)


def parse_param(cls, text: str):
    """``KEY=VALUE`` as (key, value) by the kind's bound of KEY; BadInput naming what is wrong."""
    from daemon.core import wave as w
    from daemon.errors import BadInput

    key, eq, raw = text.partition("=")
    if not eq or not key:
        raise BadInput(f"--param {text!r}: expected KEY=VALUE")
    bound = cls.params.get(key)
    if bound is None:
        raise BadInput(f"--param {key}: {cls.name} has no such parameter (it takes: "
                       f"{', '.join(sorted(cls.params)) or 'none'})")
    kind = type(bound)
    try:
        if kind is w.Flag:
            low = raw.lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError("expected true or false")
            value = low in ("true", "1", "yes")
        elif kind is w.Int:
            value = int(raw)
            if not bound.lo <= value <= bound.hi:
                raise ValueError(f"must be {bound.lo}..{bound.hi}")
        elif kind is w.Num:
            value = float(raw)
            if not (value == value and bound.lo < value <= bound.hi):  # value == value: not nan
                raise ValueError(f"must be in ({bound.lo:g}, {bound.hi:g}]")
        elif kind is w.Text:
            value = raw
            if len(value) > bound.limit:
                raise ValueError(f"at most {bound.limit} characters")
        elif kind in (w.Names, w.Items):
            value = [x for x in raw.split(",") if x] if raw else []
            if len(value) > bound.limit:
                raise ValueError(f"at most {bound.limit} items")
        else:
            raise ValueError("cannot be given on the command line")
    except ValueError as exc:
        raise BadInput(f"--param {key}={raw}: {exc}") from None
    return key, value


def list_kinds() -> list[str]:
    """One line per installed kind, then one per broken one."""
    from daemon import plugins

    lines = []
    for name, cls in sorted(plugins.wave_kinds().items()):
        params = ", ".join(f"{p}={cls.defaults[p]}" if p in cls.defaults else p for p in cls.params)
        summary = cls.summary or ((cls.__doc__ or "").strip().splitlines() or [""])[0]
        lines.append(f"{name:<12} {summary}" + (f" [params: {params}]" if params else ""))
    for name, why in sorted(plugins.broken().items()):
        lines.append(f"{name:<12} BROKEN: {why}")
    return lines


def _short(value, width: int = 160) -> str:
    import json

    text = json.dumps(value, default=repr, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."


def run(args) -> int:
    import sys

    from ctl.common import resolve_cluster, resolve_topology, save_trace
    from daemon import trace
    from ctl.output import print_json
    from daemon import plugins
    from daemon.core.wave import Graph
    from daemon.errors import BadInput
    from daemon.operator import Operator

    if args.list:
        if args.name:
            raise BadInput("ctl wave --list takes no wave name")
        print("\n".join(list_kinds()) or "no wave kind is installed")
        return 0
    if not args.name:
        raise BadInput("ctl wave: name a wave kind (ctl wave --list names them)")
    try:
        cls = plugins.kind(args.name)
    except KeyError as exc:
        raise BadInput(f"ctl wave: {exc.args[0]}") from None
    params = dict(parse_param(cls, text) for text in args.params)
    topology = resolve_topology(args)
    for name in args.initiators:
        topology.node(name)  # names an unknown node
    why = cls.refuse(Graph.of(topology))
    if why:  # said before the cluster is asked anything
        print(f"ctl wave: {cls.name} cannot run on cluster {topology.cluster.name}: {why}", file=sys.stderr)
        return 1
    if args.trace:
        trace.check_path(args.trace)
    topology = resolve_cluster(args)
    traced = True
    with Operator(topology, timeout=args.timeout) as op:
        res = op.wave(cls, args.initiators or None, params, args.timeout)
        if args.trace:
            traced = save_trace(op, args.trace, [res["wave"]], res["wave"], cls.name)
    if args.json:
        print_json(res)
        return 0 if res["complete"] and traced else 1
    total = len(topology.names)
    print(f"{res['kind']} wave {res['wave']} initiated at {', '.join(res['initiators'])}"
          + (f" with {', '.join(f'{k}={v}' for k, v in res['params'].items())}" if res["params"] else ""))
    print(f"decided: {len(res['decided'])}/{total} nodes, {res['elapsed_ms']:.2f} ms"
          + ("" if res["complete"] else " (incomplete)"))
    for name in res["decided"]:
        print(f"  {name}: {_short(res['results'][name])}")
    for name, text in res["errors"].items():
        print(f"ctl wave: {name}: {text}", file=sys.stderr)
    if not res["complete"]:
        if res["undecided"]:
            print(f"undecided within {args.timeout:g} s: {', '.join(res['undecided'])}")
        if res["unreachable"]:
            print(f"not answering: {', '.join(res['unreachable'])}")
        return 1
    return 0 if traced else 1
