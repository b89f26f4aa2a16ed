"""``ctl sim echo|finn|balance|chaos``: the deterministic simulator, no daemon started.

::

    ctl sim echo    [TOPOLOGY.toml | --nodes N --shape S] [--seed S] [--from NODE] [--dup P] [--trace FILE] [--json]
    ctl sim finn    [TOPOLOGY.toml | --nodes N --shape S] [--seed S] [--from NODE ...] [--dup P] [--trace FILE] [--json]
    ctl sim balance [TOPOLOGY.toml | --nodes N --shape S] [--scenario burst] [--policy heap|seed|none]
                    [--seed S] [--interval SECONDS] [--clock-only] [--json]
    ctl sim chaos   [TOPOLOGY.toml | --nodes N --shape S] [--seed S] [--seeds K] [--trace FILE] [--json]
    ctl sim replay  RECORDING | RUN_DIR | CLUSTER
    ctl sim wave    NAME [TOPOLOGY.toml | --nodes N --shape S] [--seed S] [--seeds K] [--from NODE ...]
                    [--param NAME=VALUE ...] [--dup P] [--json]      (ctl/sim_wave.py)
    ctl sim wave    --list

``replay`` runs the node cores of a real run again from their recordings
(daemon/recording.py: a cluster started with ``[cluster] record = true`` writes one per
node and incarnation in RUN_DIR/recording) and checks that every step gives the effects
it gave then (daemon/sim/replay.py). Exit 0 with a summary (nodes, incarnations, steps),
1 on the first divergence (node, incarnation, step, input, replayed effects, both
digests), 2 on a file that is no recording (named).

Runs the pure wave state machines (``daemon.core``) in one process over a simulated
network whose delays, reorderings and duplicates all come from the seed
(``daemon.sim``). Sends no message to any cluster. The seed is printed first (chosen
at random when not given); the same arguments and seed print the same bytes. A
generated topology (``--nodes``, ``--shape``) takes its own sub-seed from the run seed.

Checks the run against the algorithms' guarantees (echo: 2|E| messages, one decision at
the initiator, nothing in flight then, one entry per node, a spanning tree; Finn: at
most one decision per node, everyone decides when every source component initiates, at
most 2N messages per channel; on networks of up to 200 nodes, each decision made with
Inc = the node's ancestors and causally after an event at each of them). On a failed check it prints the command that replays the run and exits 1.
Exit 2 on bad arguments.

``--trace FILE`` also writes the run's steps in the trace model (daemon/trace/model.py,
``"clock": "simulated"``; daemon/sim/trace.py) to FILE, in the format its suffix names
(daemon/trace/formats.py: .json for Perfetto, .shiviz, .svg, .png, .etrace); for chaos,
the run of the first seed.
"""

from __future__ import annotations

import argparse
import shlex

from ctl.argtypes import integer, probability

ORDER = 70
HELP = "simulate echo, Finn, balancing or any wave kind on a topology, reproducibly from a seed"
DESCRIPTION = """\
Simulate one wave (or a balancing scenario) in-process over a seeded network: delays
reorder messages, --dup P duplicates a share of them. No cluster is needed.

examples:
  ctl sim echo topologies/seed.toml --seed 7
  ctl sim finn --nodes 40 --shape dag --seed 123 --dup 0.05
  ctl sim finn --nodes 40 --shape dag --seed 123 --from NODE   (one source only: see who waits)
  ctl sim balance --nodes 1000 --shape tree --scenario burst --policy seed --json
  ctl sim chaos topologies/chaos/diamond.toml --seed 1 --seeds 200
  ctl sim echo topologies/seed.toml --seed 1 --trace /tmp/echo.svg   (also .json for Perfetto, .shiviz, .etrace)
  ctl sim replay seed                  (every recording of the cluster "seed")
  ctl sim replay ~/.echofinn/seed/recording/root.1765000000000000000.rec
  ctl sim wave election --nodes 12 --shape ring --seeds 100 --dup 0.1   (any wave kind: ctl sim wave --list)
"""

SHAPES = ("tree", "dag", "ring", "strong")
TOP_SENDERS = 5      # per-node counts shown in text
NAMES_SHOWN = 10     # decided / undecided names listed in text before summarising
# Vector clocks cost N² integers and the ancestor sets O(N·E) time: checked on small runs.
CAUSALITY_MAX_NODES = 200


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ctl.shipped import help_text
    from daemon.core.plan import POLICIES
    from daemon.sim.balance import SCENARIOS


    sub = parser.add_subparsers(dest="sim", metavar="WHAT", required=True)
    echo = sub.add_parser("echo", help="one echo wave", description="Simulate one echo wave.")
    finn = sub.add_parser("finn", help="one Finn wave", description="Simulate one Finn wave.")
    balance = sub.add_parser("balance", help="a balancing scenario",
                             description="Simulate balancing rounds (echo, plan, moves) on a scenario.")
    chaos = sub.add_parser("chaos", help="whole nodes under faults",
                           description="Run whole node cores under message loss, duplication, reordering, "
                                       "delay, partitions, crashes, restarts, clock steps and stopped processes, "
                                       "and check them.")
    replay = sub.add_parser("replay", help="a real run's recordings, step for step",
                            description="Replay the recordings of a cluster started with [cluster] record = true: "
                                        "each node's core from its recorded start state, fed its recorded inputs, "
                                        "must give the effects it gave then.")
    from ctl import sim_wave

    sim_wave.add_parser(sub)
    replay.add_argument("recording", metavar="RECORDING",
                        help="a recording file, a run directory, or a cluster's name (all its nodes' recordings)")
    for p in (echo, finn, balance, chaos):
        p.add_argument("topology", nargs="?", metavar="TOPOLOGY",
                       help=help_text() + " (or generate one with --nodes and --shape)")
        p.add_argument("--nodes", "-n", metavar="N", type=integer("--nodes"),
                       help="generate a topology of N nodes, at least 1 (with --shape)")
        p.add_argument("--shape", metavar="SHAPE", help=f"{', '.join(SHAPES)} (default tree)")
        p.add_argument("--seed", type=integer("--seed"), help="run seed (default: a random one, printed)")
        p.add_argument("--json", action="store_true", help="print JSON instead of text")
    for p in (echo, finn, chaos):
        p.add_argument("--trace", metavar="FILE",
                       help="write the run's trace to FILE: .json (Perfetto), .shiviz, .svg, .png, .etrace"
                            + (" (the first seed's run)" if p is chaos else ""))
    echo.add_argument("--from", dest="initiators", action="append", metavar="NODE",
                      help="the initiator (default: the first node)")
    finn.add_argument("--from", dest="initiators", action="append", metavar="NODE",
                      help="an initiator; repeat, or separate with commas "
                           "(default: one node of every source component)")
    for p in (echo, finn):
        p.add_argument("--dup", type=probability("--dup"), default=0.0, metavar="P",
                       help="probability that a message is delivered twice (default 0)")
    chaos.add_argument("--seeds", type=integer("--seeds", 1), default=1, metavar="K",
                       help="run K seeds: S, S+1, ... (default 1)")
    chaos.add_argument("--long-partitions", action="store_true",
                       help="partitions of 2-8 s, past a move's deadline: every ACK of a move may be lost")
    balance.add_argument("--scenario", choices=SCENARIOS, default="burst",
                         help="the workload (default burst: 4 tasks per cpu of the cluster land on up to 3 nodes)")
    balance.add_argument("--policy", choices=POLICIES, default="heap",
                         help="the balancer's plan (default heap; none: no balancing, the baseline)")
    balance.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                         help="simulated seconds between balancing rounds (default 1)")
    balance.add_argument("--clock-only", action="store_true",
                         help="rounds on the clock alone; by default the nodes also ask for one as work lands "
                              "or a slot frees")


def run(args: argparse.Namespace) -> int:
    import secrets

    if args.sim == "replay":
        return _replay(args.recording)
    if args.sim == "wave":
        from ctl import sim_wave

        return sim_wave.run(args)
    if args.seed is None:
        args.seed = secrets.randbelow(2**31)
    topology, source = _topology(args)
    if getattr(args, "trace", None):
        from daemon.trace import check_path

        check_path(args.trace)  # an unknown suffix is refused before the run
    if not args.json:
        print(f"seed {args.seed}", flush=True)  # first, so that even a crash can be replayed
    if args.sim == "balance":
        return _balance(args, topology)
    if args.sim == "chaos":
        return _chaos(args, topology, source)
    if args.sim == "echo":
        report, problems = _echo(args, topology, source)
    else:
        report, problems = _finn(args, topology, source)
    report["problems"] = problems
    report["replay"] = replay_command(args)
    if args.trace:
        report["trace"] = args.trace
    if args.json:
        from ctl.output import print_json

        print_json(report)
    else:
        _print_text(report)
    return 1 if problems else 0


def replay_command(args: argparse.Namespace) -> str:
    """The exact command that repeats this run."""
    words = ["ctl", "sim", args.sim]
    if args.topology:
        words.append(args.topology)
    else:
        words += ["--nodes", str(args.nodes), "--shape", args.shape or "tree"]
    words += ["--seed", str(args.seed)]
    for name in _initiator_names(args) or ():
        words += ["--from", name]
    if getattr(args, "long_partitions", False):
        words.append("--long-partitions")
    if getattr(args, "dup", 0.0):
        words += ["--dup", repr(args.dup)]
    if args.sim == "balance":
        words += ["--scenario", args.scenario, "--policy", args.policy]
        if args.interval != 1.0:
            words += ["--interval", repr(args.interval)]
        if args.clock_only:
            words.append("--clock-only")
    return shlex.join(words)


# -- topology --------------------------------------------------------------------------


def _topology(args):
    """The topology to simulate and a line saying where it came from."""
    from daemon.errors import BadInput

    if args.topology and args.nodes is not None:
        raise BadInput("give either a topology file or --nodes N --shape S, not both")
    if args.topology:
        if args.shape:
            raise BadInput(f"--shape applies to generated topologies; {args.topology} is a file")
        from daemon.topology import load

        from ctl.shipped import topology_path

        topology = load(topology_path(args.topology))
        return topology, f"{args.topology}"
    if args.nodes is None:
        raise BadInput("no topology: give a topology file, or --nodes N --shape tree|dag|ring|strong")
    if args.nodes < 1:
        raise BadInput(f"--nodes must be at least 1, got {args.nodes}")
    shape = args.shape or "tree"
    if shape not in SHAPES:
        import difflib

        close = difflib.get_close_matches(shape, SHAPES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise BadInput(f"--shape: unknown shape {shape!r}{hint}; choose one of {', '.join(SHAPES)}")
    from daemon.sim.graph import generated
    from daemon.sim.seeds import TOPOLOGY, subseed

    topology = generated(args.nodes, shape, args.seed)
    topology_seed = subseed(args.seed, TOPOLOGY)
    return topology, f"generated {shape} (ctl gen --nodes {args.nodes} --shape {shape} --seed {topology_seed})"


def _initiator_names(args) -> list[str] | None:
    if not getattr(args, "initiators", None):
        return None
    return [name for item in args.initiators for name in item.split(",") if name]


def _check_names(topology, names: list[str]) -> None:
    from daemon.errors import BadInput
    from daemon.topology import UnknownNode

    for name in names:
        try:
            topology.index(name)
        except UnknownNode as exc:
            raise BadInput(f"--from: {exc}") from None


# -- the waves ---------------------------------------------------------------------------


def _common(args, topology, source, run, graph) -> dict:
    names = graph.names
    top = sorted(range(len(names)), key=lambda p: (-run.per_node[p], p))[:TOP_SENDERS]
    return {
        "seed": args.seed,
        "wave": args.sim,
        "topology": source,
        "nodes": len(names),
        "edges": graph.edge_count,
        "dup": args.dup,
        "messages": run.messages,
        "duplicates": run.duplicates,
        "top_senders": [[names[p], run.per_node[p]] for p in top],
        "max_per_channel": max(run.per_channel.values(), default=0),
        "events": run.events,
    }


def _echo(args, topology, source):
    from daemon.errors import BadInput
    from daemon.sim.echo import simulate_echo, spanning_tree_problem
    from daemon.sim.graph import IndexedGraph

    names = _initiator_names(args)
    if names and len(names) > 1:
        raise BadInput(f"--from: an echo wave has one initiator, got {len(names)}: {', '.join(names)}")
    if names:
        _check_names(topology, names)
    graph = IndexedGraph(topology)
    run = simulate_echo(graph, names[0] if names else None, seed=args.seed, dup=args.dup, traced=bool(args.trace))
    problems = run.problems(graph)
    _write_trace(args, run.trace)
    report = _common(args, topology, source, run, graph)
    report.update({
        "initiator": graph.names[run.initiator],
        "links": run.links,
        "decided": run.decided,
        "undecided": run.undecided,
        "decided_at": _ms(run.decided_at),
        "time": _ms(run.time),
        "entries": len(run.entries or ()),
        "tree_ok": run.entries is not None and spanning_tree_problem(graph, run.initiator, run.entries) is None,
        "in_flight_at_decision": run.in_flight_at_decision,
        "delivered_after_decision": run.after_decision,
    })
    return report, problems


def _finn(args, topology, source):
    from daemon.sim.finn import ancestor_problems, simulate_finn
    from daemon.sim.graph import IndexedGraph

    names = _initiator_names(args)
    if names:
        _check_names(topology, names)
    graph = IndexedGraph(topology)
    small = len(graph) <= CAUSALITY_MAX_NODES
    run = simulate_finn(graph, names, seed=args.seed, dup=args.dup, clocks=small, traced=bool(args.trace))
    _write_trace(args, run.trace)
    required = set(graph.finn_initiators())
    every_source_starts = required <= set(run.initiators)
    problems = run.problems(expect_all=every_source_starts)
    if small:
        problems += ancestor_problems(run, graph)
    woke = [size for size in run.inc_sizes if size]
    report = _common(args, topology, source, run, graph)
    report.update({
        "initiators": [graph.names[p] for p in run.initiators],
        "every_source_component_initiated": every_source_starts,
        "decided": run.decided,
        "undecided": run.undecided,
        "decisions": [[graph.names[p], _ms(t)] for t, p in run.decisions],
        "first_decision": _ms(run.decisions[0][0]) if run.decisions else None,
        "time": _ms(run.last_decision if run.decisions else run.time),
        "last_event": _ms(run.time),
        "average_inc": round(sum(woke) / len(woke), 3) if woke else 0.0,
        "causality_checked": small,
    })
    return report, problems


def _write_trace(args, trace) -> None:
    if args.trace:
        from daemon.trace import write

        write(trace, args.trace)


def _count(k: int, noun: str) -> str:
    return f"{k} {noun}" if k == 1 else f"{k} {noun}s"


def _ms(t: float | None) -> float | None:
    return None if t is None else round(t, 6)


def _names(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f", ... ({len(names)} in all)" if len(names) > NAMES_SHOWN else "")


def _print_text(r: dict) -> None:
    print(f"topology: {r['topology']}: {_count(r['nodes'], 'node')}, {_count(r['edges'], 'edge')}")
    dup = f", duplicates delivered: {r['duplicates']} (--dup {r['dup']})" if r["dup"] else ""
    senders = ", ".join(f"{name} {count}" for name, count in r["top_senders"])
    if r["wave"] == "echo":
        print(f"echo from {r['initiator']}")
        print(f"messages: {r['messages']} (2|E| = {2 * r['links']}){dup}")
        print(f"per node (top {len(r['top_senders'])} of {r['nodes']}): {senders}")
        if r["decided"]:
            late = f", {r['delivered_after_decision']} duplicates delivered after it" if r["dup"] else ""
            print(f"decided: {r['initiator']} at {r['decided_at']:.3f} ms, "
                  f"{r['in_flight_at_decision']} messages in flight then{late}")
        else:
            print(f"undecided: {r['initiator']}")
        tree = "a spanning tree rooted at the initiator" if r["tree_ok"] else "NOT a spanning tree"
        print(f"entries: {r['entries']} of {r['nodes']}; father pointers: {tree}")
    else:
        print(f"finn from {len(r['initiators'])} initiator(s): {_names(r['initiators'])}"
              + ("" if r["every_source_component_initiated"] else
                 " (not every source component initiated: its descendants wait)"))
        print(f"messages: {r['messages']}, at most {r['max_per_channel']} on one channel "
              f"(bound 2N = {2 * r['nodes']}){dup}")
        print(f"per node (top {len(r['top_senders'])} of {r['nodes']}): {senders}")
        if r["decided"]:
            print(f"decided: {len(r['decided'])} of {r['nodes']}, first at {r['first_decision']:.3f} ms, "
                  f"last at {r['time']:.3f} ms: {_names(r['decided'])}")
        print(f"undecided: {_names(r['undecided'])}")
        print(f"average |Inc| at the end: {r['average_inc']}")
        if not r["causality_checked"]:
            print(f"decisions against ancestors and vector clocks: not checked (over {CAUSALITY_MAX_NODES} nodes)")
    print(f"simulated time: {r['time']:.3f} ms, {r['events']} events")
    if r.get("trace"):
        print(f"trace: {r['trace']}")
    if r["problems"]:
        for problem in r["problems"]:
            print(f"check failed: {problem}")
        print(f"replay: {r['replay']}")
    else:
        print("checks: ok")


# -- balancing ---------------------------------------------------------------------------


def _balance(args, topology) -> int:
    from daemon.errors import BadInput, UserError

    try:
        from daemon.sim.balance import format_report, simulate
    except ModuleNotFoundError as exc:
        if exc.name != "daemon.sim.balance":
            raise
        raise UserError("ctl sim balance is not available yet: daemon/sim/balance.py has not landed") from None
    try:
        result = simulate(topology, scenario=args.scenario, policy=args.policy, seed=args.seed,
                          interval=args.interval, triggers=not args.clock_only)
    except ValueError as exc:  # its documented answer to a bad scenario, policy or interval
        raise BadInput(str(exc)) from None
    if args.json:
        from ctl.output import print_json

        print_json({"seed": args.seed, **result, "replay": replay_command(args)})
    else:
        print(format_report(result))
        print(f"replay: {replay_command(args)}")
    return 0


# -- chaos -------------------------------------------------------------------------------


def _chaos(args, topology, source) -> int:
    import copy

    from daemon.sim.chaos import FAULT_KINDS, LONG_PARTITIONS, ChaosConfig, simulate_chaos
    from daemon.sim.graph import generated

    config = LONG_PARTITIONS if args.long_partitions else ChaosConfig()
    first = args.seed
    totals = {"tasks": 0, "done": 0, "lost": 0, "duplicated": 0, "allowed_duplicates": 0, "events": 0,
              "cuts_checked": 0, "finn_decisions": 0}
    faults = dict.fromkeys(FAULT_KINDS, 0)
    failures = []
    reports = []
    if args.seeds > 1 and not args.json:
        print(f"seeds {first}..{first + args.seeds - 1}", flush=True)
    for seed in range(first, first + args.seeds):
        if args.nodes is not None and seed != first:
            topology = generated(args.nodes, args.shape or "tree", seed)
        tracer = None
        if args.trace and seed == first:
            from daemon.sim.trace import ChaosTracer

            tracer = ChaosTracer(topology.names, topology.edges())
        report = simulate_chaos(topology, seed, config, tracer)
        if tracer is not None:
            _write_trace(args, tracer.trace())
        one = copy.copy(args)
        one.seed = seed
        report["replay"] = replay_command(one)
        reports.append(report)
        for key in totals:
            totals[key] += report["echoes"]["cuts_checked"] if key == "cuts_checked" else report[key]
        for kind, count in report["faults"].items():
            faults[kind] += count
        if not report["ok"]:
            failures.append({"seed": seed, "problems": report["problems"], "replay": report["replay"]})
    if args.json:
        from ctl.output import print_json

        if args.seeds == 1:
            print_json({"topology": source, **reports[0]})
        else:
            print_json({"topology": source, "seeds": [first, first + args.seeds - 1], **totals, "faults": faults,
                        "ok": not failures, "failures": failures})
        return 1 if failures else 0
    where = source if args.nodes is None or args.seeds == 1 else f"generated {args.shape or 'tree'}, one per seed"
    print(f"topology: {where}: {_count(len(topology.names), 'node')}, {_count(topology.edge_count, 'edge')}")
    if args.seeds == 1:
        r = reports[0]
        e = r["echoes"]
        print(f"events: {r['events']}, simulated time {r['time']:.3f} s")
        print(f"tasks: {r['tasks']}, done {r['done']}, lost {r['lost']}, duplicated {r['duplicated']}, "
              f"allowed duplicates {r['allowed_duplicates']} (moves both accepted and taken back)")
        print(f"echo waves: {e['started']} started, {e['complete']} complete (consistent cuts checked: "
              f"{e['cuts_checked']}), {e['incomplete']} incomplete, {e['excused']} initiator crashed")
        mv = r["moves"]
        print(f"moves: {mv['planned']} planned, {mv['accepted']} accepted, {mv['taken_back']} taken back; "
              f"Finn decisions: {r['finn_decisions']}")
    else:
        print(f"events: {totals['events']}, consistent cuts checked: {totals['cuts_checked']}, "
              f"Finn decisions: {totals['finn_decisions']}")
        print(f"tasks: {totals['tasks']}, done {totals['done']}, lost {totals['lost']}, duplicated "
              f"{totals['duplicated']}, allowed duplicates {totals['allowed_duplicates']}")
    print("faults: " + ", ".join(f"{k} {v}" for k, v in (reports[0]["faults"] if args.seeds == 1 else faults).items()))
    if args.trace:
        print(f"trace: {args.trace} (seed {first})")
    if not failures:
        print("checks: ok")
        return 0
    for failure in failures:
        for problem in failure["problems"]:
            print(f"check failed (seed {failure['seed']}): {problem}")
        print(f"replay: {failure['replay']}")
    return 1


# -- argument types ------------------------------------------------------------------------




# -- replay ---------------------------------------------------------------------------


def _replay(target: str) -> int:
    """Replay every recording ``target`` names (a file, a run directory, a cluster)."""
    import os

    from daemon import rundir
    from daemon.errors import BadInput
    from daemon.sim.replay import RecordingError, replay_all

    if not os.path.exists(target) and os.sep not in target:  # a cluster's name
        folder = rundir.cluster_dir(target)
        if folder.is_dir():
            target = str(folder)
    try:
        report = replay_all(target)
    except RecordingError as exc:
        raise BadInput(str(exc)) from None
    print(report.summary())
    for divergence in report.divergences[:1]:  # the first: later steps of others may follow from it
        print(divergence.text())
    return 1 if report.divergences else 0
