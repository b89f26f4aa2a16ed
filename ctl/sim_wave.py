"""``ctl sim wave``: any wave kind in the seeded simulator, with its checks.

::

    ctl sim wave NAME [TOPOLOGY.toml | --nodes N --shape S] [--seed S] [--seeds K]
                 [--from NODE ...] [--param NAME=VALUE ...] [--dup P] [--json]
    ctl sim wave --list

Runs the kind NAME (any installed wave kind: echo, finn, tarry, tree, phase, election,
termination, and third-party ones) on the topology over the simulated network of
daemon/sim/, once per seed (S, S+1, ..., S+K-1; a generated topology is generated again
for each seed, as ``--seed`` alone would), and judges each run with the kind's
``check()`` and the harness's own checks. Prints per seed the messages, the decisions
and the verdict, then a summary. Exit 0 when every run passes; 1 on a violation (each
failing seed named with the command that replays it) or when the kind cannot run on the
topology (the kind's ``refuse()`` sentence: not a tree, not a ring, not strongly
connected); 2 on bad arguments. Without ``--shape``, a generated topology takes the
first of tree, dag, ring, strong that the kind can run on."""

from __future__ import annotations

import argparse
import shlex

from ctl.argtypes import integer, probability

SHAPES = ("tree", "dag", "ring", "strong")
DECISIONS_SHOWN = 3


def add_parser(sub) -> None:
    from ctl.shipped import help_text

    wave = sub.add_parser(
        "wave",
        help="any wave kind, with its checks",
        description="Simulate a wave of any kind (Tarry's traversal, the tree algorithm, the phase algorithm, "
        "Chang–Roberts election) and check it against the kind's guarantees.",
        epilog="examples:\n"
        "  ctl sim wave --list\n"
        "  ctl sim wave tarry topologies/seed.toml --seeds 20\n"
        "  ctl sim wave election --nodes 12 --shape ring --seed 3 --dup 0.1\n"
        "  ctl sim wave phase --nodes 30 --shape strong --param D=29 --seeds 50\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    wave.add_argument("kind", nargs="?", metavar="NAME", help="the wave kind (see --list)")
    wave.add_argument(
        "topology",
        nargs="?",
        metavar="TOPOLOGY",
        help=help_text() + " (or generate one with --nodes and --shape)",
    )
    wave.add_argument("--list", action="store_true", help="list the kinds and exit")
    wave.add_argument(
        "--nodes", "-n", metavar="N", type=integer("--nodes"), help="generate a topology of N nodes (with --shape)"
    )
    wave.add_argument(
        "--shape", metavar="SHAPE", help="tree, dag, ring or strong (default: the first the kind can run on)"
    )
    wave.add_argument("--seed", type=integer("--seed"), help="run seed (default: a random one, printed)")
    wave.add_argument(
        "--seeds", type=integer("--seeds", 1), default=1, metavar="K", help="run K seeds: S, S+1, ... (default 1)"
    )
    wave.add_argument(
        "--from",
        dest="initiators",
        action="append",
        metavar="NODE",
        help="an initiator; repeat, or separate with commas (default: the kind's)",
    )
    wave.add_argument(
        "--param",
        dest="params",
        action="append",
        metavar="NAME=VALUE",
        help="a start parameter of the kind (phase: D=N)",
    )
    wave.add_argument(
        "--dup",
        type=probability("--dup"),
        default=0.0,
        metavar="P",
        help="probability that a message is delivered twice (default 0)",
    )
    wave.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    import copy
    import secrets

    from daemon.errors import BadInput
    from daemon.sim.wave import kind_named, kinds

    if args.list:
        return _list(args, kinds())
    if not args.kind:
        raise BadInput("give a wave kind (ctl sim wave --list names them)")
    kind = kind_named(args.kind)
    params = _params(args.params)
    if args.seed is None:
        args.seed = secrets.randbelow(2**31)
    first = args.seed
    if args.nodes is not None and args.shape is None:
        args.shape = _first_shape(kind, args.nodes, first)
    if not args.json:
        print(f"seed {first}" if args.seeds == 1 else f"seeds {first}..{first + args.seeds - 1}", flush=True)
    reports = []
    topology, source = _topology(args)
    for seed in range(first, first + args.seeds):
        one = copy.copy(args)
        one.seed = seed
        if args.nodes is not None and seed != first:  # a file is read once; a generated one is per seed
            topology, _ = _topology(one)
        report = _one(one, kind, topology, params)
        reports.append(report)
        if not args.json:
            if seed == first:
                one_each = (
                    " (the first seed's; one generated per seed)" if args.nodes is not None and args.seeds > 1 else ""
                )
                print(f"topology: {source}: {len(topology.names)} nodes, {topology.edge_count} edges{one_each}")
                print(
                    f"{kind.name} from {len(report['initiators'])} initiator(s): {_names(report['initiators'])}"
                    + (f"; parameters {_params_text(report['params'])}" if report["params"] else "")
                )
            print(_line(report), flush=True)
    failures = [
        {"seed": r["seed"], "violations": r["violations"], "replay": r["replay"]} for r in reports if r["violations"]
    ]
    if args.json:
        from ctl.output import print_json

        if args.seeds == 1:
            print_json({"topology": source, **reports[0]})
        else:
            print_json(
                {
                    "wave": kind.name,
                    "topology": source,
                    "seeds": [first, first + args.seeds - 1],
                    "messages": _span([r["messages"] for r in reports]),
                    "ok": not failures,
                    "failures": failures,
                    "runs": reports,
                }
            )
        return 1 if failures else 0
    if args.seeds > 1:
        print(
            f"summary: {args.seeds} seeds, {args.seeds - len(failures)} passed, {len(failures)} failed; "
            f"messages {_span([r['messages'] for r in reports], text=True)}"
        )
    if not failures:
        print("checks: ok")
        return 0
    for failure in failures:
        for violation in failure["violations"]:
            print(f"check failed (seed {failure['seed']}): {violation}")
        print(f"replay: {failure['replay']}")
    return 1


def _list(args, found) -> int:
    rows = [
        {
            "name": k.name,
            "summary": k.summary,
            "hears_from": k.hears_from,
            "initiators": k.initiators_allowed,
            "params": sorted(k.params),
        }
        for k in found.values()
    ]
    if args.json:
        from ctl.output import print_json

        print_json(rows)
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['summary']}")
    return 0


def _params(items: list[str] | None) -> dict:
    from daemon.errors import BadInput

    out = {}
    for item in items or ():
        name, eq, text = item.partition("=")
        if not eq or not name:
            raise BadInput(f"--param: expected NAME=VALUE, got {item!r}")
        out[name] = _value(text)
    return out


def _value(text: str):
    if text in ("true", "false"):
        return text == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _first_shape(kind, nodes: int, seed: int) -> str:
    from daemon.core.wave import Graph
    from daemon.sim.graph import generated

    for shape in SHAPES:
        if kind.refuse(Graph.of(generated(nodes, shape, seed))) is None:
            return shape
    return "tree"  # none fits: the run says why


def _topology(args):
    from ctl.commands.sim import _topology as topology

    return topology(args)


def _one(args, kind, topology, params) -> dict:
    from daemon.core.wave import Graph
    from daemon.sim.wave import simulate_wave

    names = [name for item in args.initiators or () for name in item.split(",") if name]
    graph = Graph.of(topology)
    sim = simulate_wave(kind, graph, names, params, seed=args.seed, dup=args.dup)
    run = sim.run
    return {
        "seed": args.seed,
        "wave": kind.name,
        "nodes": len(graph.nodes),
        "edges": len(graph.edges),
        "initiators": list(run.initiators),
        "params": sim.params,
        "dup": args.dup,
        "messages": run.messages,
        "max_per_channel": max(run.per_channel.values(), default=0),
        "max_in_flight": sim.max_in_flight,
        "duplicates": sim.duplicates,
        "decisions": [[p, r, round(t, 6)] for (p, r), t in zip(run.decisions, sim.decision_times)],
        "reached": sum(1 for n in graph.nodes if n in run.reached),
        "events": sim.events,
        "time": round(sim.time, 6),
        "complete": run.complete,
        "violations": sim.violations,
        "replay": replay_command(args),
    }


def replay_command(args) -> str:
    """The exact command that repeats the run of ``args.seed``."""
    words = ["ctl", "sim", "wave", args.kind]
    if args.topology:
        words.append(args.topology)
    else:
        words += ["--nodes", str(args.nodes), "--shape", args.shape or "tree"]
    words += ["--seed", str(args.seed)]
    for item in args.initiators or ():
        words += ["--from", item]
    for item in args.params or ():
        words += ["--param", item]
    if args.dup:
        words += ["--dup", repr(args.dup)]
    return shlex.join(words)


def _line(r: dict) -> str:
    decisions = r["decisions"]
    shown = "; ".join(f"{p} {_result(res)} at {t:.3f} ms" for p, res, t in decisions[:DECISIONS_SHOWN])
    if len(decisions) > DECISIONS_SHOWN:
        shown += f"; ... ({len(decisions)} in all)"
    dup = f", {r['duplicates']} duplicates delivered" if r["dup"] else ""
    verdict = "ok" if not r["violations"] else f"FAILED ({len(r['violations'])} violations)"
    return (
        f"seed {r['seed']}: {r['messages']} messages (at most {r['max_per_channel']} on a channel, "
        f"{r['max_in_flight']} in flight at once{dup}), reached {r['reached']}/{r['nodes']}, "
        f"{_count(len(decisions), 'decision')}: {shown or 'none'}; check {verdict}"
    )


def _count(k: int, noun: str) -> str:
    return f"{k} {noun}" if k == 1 else f"{k} {noun}s"


def _params_text(params: dict) -> str:
    return " ".join(f"{name}={value}" for name, value in params.items())


def _result(result) -> str:
    import json

    return json.dumps(result, sort_keys=True)


def _span(values: list[int], text: bool = False):
    lo, hi = min(values), max(values)
    if text:
        return str(lo) if lo == hi else f"{lo}..{hi}"
    return [lo, hi]


def _names(names: list[str], shown: int = 10) -> str:
    text = ", ".join(names[:shown])
    return text + (f", ... ({len(names)} in all)" if len(names) > shown else "")
