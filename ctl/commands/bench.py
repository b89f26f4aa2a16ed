"""``ctl bench echo|balance|scale|sim``: measure, print a table with its yardstick and
ratio, ``--json`` for scripts, ``--plot FILE.png`` for people.

Every bench starts what it measures itself (real clusters in a private ECHOFINN_HOME on
free ports, stopped by pid on the way out, or the simulator) and prints the conditions:
cores, load average, Python. The machine may be shared: the yardstick is measured in
the same run wherever there is one (the echo floor), and a ratio is printed beside each
figure. Long runs print progress lines on stderr. A figure past its target is marked MISSED
beside it, and the run ends with the list of missed targets.

  echo     echo latency over a real cluster against a raw pyzmq relay tree of the same
           shape, same pacing (--gap), same run; --load adds every slot busy;
           --client ctl runs each wave as a new `ctl echo` process, as a user does;
           --per-process 1,8 measures a cluster of a process per node and one of
           8 nodes per process.
           JSON: p50_ms, floor_p50_ms, ratio (the first size, idle) and every row.
  balance  the burst on a real cluster per policy (makespan from submit to the last
           done against LB), or --scenario queue: a queue of millions, rounds timed,
           frame sizes, every task counted.
  scale    start, memory per idle daemon, one echo, stop, for each size in --nodes.
  sim      the simulator: the burst per policy on a generated topology; --snapshots N
           the heap plan's properties; --scale echo and Finn on large graphs.
"""

from __future__ import annotations

import argparse
import os

ORDER = 95
MAX_NODES = 5000  # real processes: about 6 MB and 15 ms of start each (BENCHMARKS.md)
HELP = "measure: echo against its floor, balancing, many daemons, the simulator (tables, --json, --plot)"
DESCRIPTION = __doc__

ECHO_COLUMNS = [("case", "case", "{}"), ("nodes", "nodes", "{:,}"), ("waves", "waves", "{}"), ("p50 ms", "p50_ms", "{:.2f}"),
                ("p90 ms", "p90_ms", "{:.2f}"), ("min ms", "min_ms", "{:.2f}"), ("floor p50 ms", "floor_p50_ms", "{:.2f}"),
                ("ratio", "ratio", "{:.2f}"), ("lost", "lost", "{}")]
BURST_COLUMNS = [("policy", "policy", "{}"), ("makespan s", "makespan_s", "{:.3f}"), ("LB s", "lb_s", "{:.3f}"),
                 ("ratio", "ratio", "{:.3f}"), ("moved", "moved", "{:,}"), ("rounds", "rounds", "{:,}")]
QUEUE_COLUMNS = [("round", "round", "{}"), ("ms", "elapsed_ms", "{:.0f}"), ("moved", "moved", "{:,}"), ("moves", "moves", "{}"),
                 ("imbalance before", "imbalance_before", "{:.3f}"), ("after", "imbalance_after", "{:.3f}"),
                 ("echo bytes", "entries_bytes", "{:,}")]
SCALE_COLUMNS = [("nodes", "nodes", "{:,}"), ("start s", "start_s", "{:.2f}"), ("target s", "start_target_s", "{:.2f}"),
                 ("USS MB", "uss_mb_median", "{:.2f}"), ("max", "uss_mb_max", "{:.2f}"), ("target", "uss_target_mb", "{:.0f}"),
                 ("USS MB/node", "uss_mb_per_node", "{:.2f}"), ("USS MB after echo", "uss_mb_after_echo", "{:.2f}"),
                 ("RSS MB", "rss_mb_median", "{:.1f}"), ("echo ms", "echo_ms", "{:.1f}"), ("entries", "echo_entries", "{:,}"),
                 ("stop s", "stop_s", "{:.2f}"), ("nodes gone s", "nodes_gone_s", "{:.2f}"), ("target s", "stop_target_s", "{:.2f}"),
                 ("left", "left", "{}")]
SIM_COLUMNS = [("policy", "policy", "{}"), ("nodes", "nodes", "{:,}"), ("tasks", "tasks", "{:,}"), ("makespan s", "makespan_s", "{:,.3f}"),
               ("LB s", "lb_s", "{:.3f}"), ("ratio", "ratio", "{:,.3f}"), ("moved", "moved", "{:,}"), ("rounds", "rounds", "{:,}"),
               ("wall s", "wall_s", "{:.2f}")]
# The targets a figure is held to (BENCHMARKS.md states them): per table, (the row's key,
# the target: a number, or the key of the row that holds it, or None where the row has
# none, and a test of which rows the target applies to). A figure over its target is
# marked MISSED in its cell, listed at the end of the text and in the JSON's "missed".
ECHO_TARGETS = [("ratio", 2.0, lambda r: r["case"].startswith("echo"))]
BURST_TARGETS = [("ratio", 1.2, lambda r: r.get("policy") == "heap")]
SCALE_TARGETS = [("start_s", "start_target_s", None), ("uss_mb_per_node", "uss_target_mb", None),
                 ("stop_s", "stop_target_s", None)]
SIM_SCALE_TARGETS = [("messages", "message_bound", None)]
QUEUE_TARGETS = [("round_ms_max", "round_target_ms", None), ("transfer_bytes", "frame_target_bytes", None),
                 ("lost", 0, None)]
MISSED = "MISSED"

SIM_SCALE_COLUMNS = [("run", "case", "{}"), ("shape", "shape", "{}"), ("nodes", "nodes", "{:,}"), ("wall s", "wall_s", "{:.2f}"),
                     ("CPU s", "cpu_s", "{:.2f}"), ("events", "events", "{:,}"), ("messages", "messages", "{:,}"),
                     ("bound", "message_bound", "{:,}"), ("checks", "checks", "{}"), ("peak RSS MB", "peak_rss_mb", "{}")]


def sizes(flag: str, most: int = MAX_NODES):
    def parse(text: str) -> list[int]:
        try:
            values = [int(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be node counts separated by commas, got {text!r}") from None
        if not values or any(not 1 <= v <= most for v in values):
            # the supervisor waits for its nodes' ready lines with select(2): 1,024 descriptors
            raise argparse.ArgumentTypeError(f"{flag} must be node counts from 1 to {most}, got {text!r}")
        return values

    parse.__name__ = "sizes"
    return parse


def policies(text: str) -> list[str]:
    from daemon.core.plan import POLICIES

    from ctl.bench.balance import SUPERVISOR

    chosen = [p.strip() for p in text.split(",") if p.strip()]
    wrong = [p for p in chosen if p not in (*POLICIES, SUPERVISOR)]
    if not chosen or wrong:
        raise argparse.ArgumentTypeError(f"--policy takes {', '.join((*POLICIES, SUPERVISOR))} separated by commas, got {text!r}")
    return chosen


def add_arguments(p):
    from ctl.argtypes import integer, seconds
    from ctl.common import add_json_option
    from ctl.shipped import help_text
    from daemon.core.plan import POLICIES


    sub = p.add_subparsers(dest="bench", metavar="BENCH", required=True)

    def common(q):
        add_json_option(q)
        q.add_argument("--plot", metavar="FILE.png", help="also draw the result into this PNG (needs the [plot] extra)")

    e = sub.add_parser("echo", help="echo latency against the raw pyzmq floor")
    e.add_argument("--nodes", type=sizes("--nodes"), default=[31], metavar="N[,N...]", help="cluster sizes (default 31)")
    e.add_argument("--shape", default="balanced", choices=("balanced", "tree", "dag", "ring", "strong"),
                   help="balanced tree (default; the floor's shape) or a generated topology of that shape, as ctl gen makes")
    e.add_argument("--fanout", type=integer("--fanout", 1, 64), default=2, help="children per node (default 2)")
    e.add_argument("--waves", type=integer("--waves", 1, 100_000), default=200, help="waves per case (default 200; a tenth above 200 nodes)")
    e.add_argument("--gap", type=seconds("--gap", 60, zero=True), default=0.0, metavar="SECONDS", help="pause between waves, for floor and cluster alike (default 0: back to back)")
    e.add_argument("--load", action="store_true", help="also measure with every CPU slot busy")
    e.add_argument("--client", choices=("operator", "ctl"), default="operator",
                   help="operator: waves from this process (default); ctl: a new `ctl echo` process per wave")
    e.add_argument("--per-process", type=sizes("--per-process", 1024), default=[1], metavar="K[,K...]",
                   help="nodes per daemon process ([cluster] nodes_per_process), a cluster for each (default 1: "
                        "a process per node; the floor is always a process per node)")
    common(e)

    b = sub.add_parser("balance", help="the burst per policy on a real cluster, or a queue of millions")
    b.add_argument("topology", nargs="?", metavar="TOPOLOGY", help=help_text() + " (default: seed)")
    b.add_argument("--scenario", choices=("burst", "queue"), default="burst",
                   help="burst (default): tasks land on one node, rounds spread them, per policy; "
                        "queue: a queue of millions at one node, rounds timed")
    b.add_argument("--policy", type=policies, default=["heap", "seed", "none"], metavar="P[,P...]", help="burst: the policies to compare, any of " + ", ".join(POLICIES) + ", comma-separated (default: all); supervisor: the cluster's own balancing (heap, every --interval, with its triggers), watched from outside")
    b.add_argument("--tasks", type=integer("--tasks", 1, 10_000_000), help="burst: tasks (default 152); queue: tasks (default 2,000,000)")
    b.add_argument("--cost", type=seconds("--cost", 3600), default=None, metavar="SECONDS", help="task cost (default 0.5 burst, 1.0 queue)")
    b.add_argument("--at", default="subserviate", metavar="NODE", help="the node the work lands on (default subserviate)")
    b.add_argument("--interval", type=seconds("--interval", 60), default=0.5, metavar="SECONDS", help="burst: seconds between rounds (default 0.5)")
    b.add_argument("--clock-only", action="store_true",
                   help="burst: rounds every --interval only, none when a node asks (the first as the burst lands)")
    b.add_argument("--rounds", type=integer("--rounds", 1, 1000), default=3, help="queue: rounds to time (default 3)")
    common(b)

    s = sub.add_parser("scale", help="many node daemons: start, memory, echo, stop")
    s.add_argument("--nodes", type=sizes("--nodes"), default=[50, 200, 1000], metavar="N[,N...]", help="sizes (default 50,200,1000)")
    s.add_argument("--spawn", choices=("fork", "exec"), default="fork", help="fork from the supervisor (default) or a fresh interpreter per node")
    s.add_argument("--per-process", type=integer("--per-process", 1, 1024), default=1, metavar="K",
                   help="nodes per daemon process ([cluster] nodes_per_process; default 1)")
    common(s)

    m = sub.add_parser("sim", help="the simulator: the burst per policy, the plan's properties, large waves")
    m.add_argument("--nodes", type=integer("--nodes", 1, 100_000), default=1000, help="burst: generated tree size (default 1000)")
    m.add_argument("--seed", type=integer("--seed", 0), default=1, help="the simulator's seed (default 1)")
    m.add_argument("--interval", type=seconds("--interval", 3600), default=1.0, metavar="SECONDS", help="seconds between rounds (default 1)")
    m.add_argument("--snapshots", type=integer("--snapshots", 0, 10_000_000), default=0, metavar="N", help="also check the heap plan on N random snapshots")
    m.add_argument("--scale", action="store_true", help="also echo on 100,000 nodes and Finn on 10,000 (DAG) and 1,000 (strong)")
    common(m)


def run(args) -> int:
    import sys

    from ctl.output import print_json

    def progress(line: str) -> None:
        print(f"ctl bench: {line}", file=sys.stderr, flush=True)

    result = {"echo": _echo, "balance": _balance, "scale": _scale, "sim": _sim}[args.bench](args, progress)
    result.setdefault("bench", args.bench)
    result["conditions"] = {"cores": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()],
                            "python": sys.version.split()[0]}
    if args.plot:
        from ctl.bench import plot

        plot.save(result, args.plot)
    tables = result.pop("_tables")
    result["missed"] = [m for title, columns, rows, *targets in tables for m in missed(rows, *targets, title=title)]
    result["missed"] += result.pop("_missed", [])
    if args.json:
        print_json(result)
        return 0
    for title, columns, rows, *targets in tables:
        print(title)
        print(table(rows, columns, *targets))
        print()
    for line in result.get("_notes", []):
        print(line)
    if result["missed"]:
        print(f"{MISSED}: {len(result['missed'])} target(s): " + "; ".join(m["text"] for m in result["missed"]))
    c = result["conditions"]
    print(f"conditions: {c['cores']} cores, load average {' '.join(map(str, c['load_avg']))} at the end, Python {c['python']}"
          + (f"; plot: {args.plot}" if args.plot else ""))
    return 0


def missed(rows: list[dict], targets=(), title: str = "") -> list[dict]:
    """Every figure of ``rows`` over its target (``targets``: see ECHO_TARGETS), as
    {"row", "key", "value", "target", "text"}."""
    out = []
    for i, row in enumerate(rows):
        for key, target, applies in targets:
            limit = row.get(target) if isinstance(target, str) else target
            value = row.get(key)
            if limit is None or not isinstance(value, (int, float)) or (applies and not applies(row)):
                continue
            if value > limit:
                label = row.get("case") or row.get("policy") or (f"{row['nodes']} nodes" if "nodes" in row else f"row {i + 1}")
                out.append({"row": i, "key": key, "value": value, "target": limit,
                            "text": f"{label}: {key} {value:,.4g} over its target {limit:,.4g}"})
    return out


def table(rows: list[dict], columns, targets=()) -> str:
    marks = {(m["row"], m["key"]) for m in missed(rows, targets)}
    cells = [[h for h, _, _ in columns]]
    for i, r in enumerate(rows):
        cells.append([_cell(r.get(key), fmt) + (f" {MISSED}" if (i, key) in marks else "")
                      for _, key, fmt in columns])
    widths = [max(len(row[k]) for row in cells) for k in range(len(columns))]
    lines = []
    for i, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value, fmt: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return str(len(value))
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def _echo(args, progress) -> dict:
    from ctl.bench import echo

    result = echo.run(args.nodes, args.shape, args.fanout, args.waves, args.gap, args.load, args.client, progress,
                      tuple(args.per_process))
    pacing = f"{args.gap:g} s between waves" if args.gap else "back to back"
    result["_tables"] = [(f"echo against the floor ({args.shape}, fan-out {args.fanout}, {pacing}, client {args.client}; "
                          f"ratio = p50 / floor p50 of the same run; target ≤ 2)", ECHO_COLUMNS, result["rows"], ECHO_TARGETS)]
    return result


def _balance(args, progress) -> dict:
    from ctl.bench import balance
    from daemon.topology import load

    from ctl.shipped import topology_path

    path = os.path.abspath(topology_path(args.topology or balance.DEFAULT_TOPOLOGY))
    load(path).node(args.at)  # a bad file or an unknown node: exit 2 before anything starts
    if args.scenario == "queue":
        r = balance.queue(args.tasks or 2_000_000, path, args.at, args.cost or 1.0, args.rounds, progress)
        notes = [f"queue of {r['tasks']:,} tasks at {r['at']} (submitted in {r['submit_s']:.1f} s): longest round "
                 f"{r['round_ms_max']:.0f} ms (target ≤ {r['round_target_ms']:.0f}); largest echo convergecast "
                 f"{r['echo_bytes_max']:,} bytes, a full TRANSFER {r['transfer_bytes']:,} bytes (target ≤ {r['frame_target_bytes']:,}); "
                 f"after the hand-offs {r['found']:,} of {r['submitted']:,} tasks found, accounting "
                 f"{'balanced' if r['balanced'] else 'BROKEN'}, lost {r['lost']}"]
        queue_missed = missed([r], QUEUE_TARGETS) + ([] if r["balanced"] else [
            {"row": 0, "key": "balanced", "value": False, "target": True, "text": "the books do not balance"}])
        if queue_missed:
            notes.append(f"{MISSED}: " + "; ".join(m["text"] for m in queue_missed))
        return {"bench": "balance", "rows": [r], "_tables": [("balancing rounds", QUEUE_COLUMNS, r["rounds"])], "_notes": notes,
                "_missed": queue_missed}
    rows = []
    for policy in args.policy:
        progress(f"balance: burst, policy {policy}")
        rows.append(balance.burst(policy, path, args.tasks or 152, args.cost or 0.5, args.at, args.interval, progress=progress,
                                  triggers=not args.clock_only))
    r0 = rows[0]
    title = (f"burst on a real cluster ({os.path.basename(path)}): {r0['tasks']} tasks × {r0['cost']:g} s at {r0['at']}, "
             f"a round every {r0['interval_s']:g} s{'' if args.clock_only else ' and whenever a node asks'}; makespan from submit to the last done; ratio = makespan / LB (heap target ≤ 1.2)")
    return {"bench": "balance", "rows": rows, "_tables": [(title, BURST_COLUMNS, rows, BURST_TARGETS)]}


def _scale(args, progress) -> dict:
    from ctl.bench import scale

    result = scale.run(args.nodes, args.spawn, progress, args.per_process)
    result["_notes"] = [f"{r['nodes']} nodes: {r['error']}" for r in result["rows"] if "error" in r]
    per = f", {args.per_process} nodes per process" if args.per_process > 1 else ""
    result["_tables"] = [(f"node daemons ({args.spawn}{per}): targets for 1,000 nodes: up ≤ 15 s, ≤ 6 MB USS each, stopped ≤ 5 s "
                          "(scaled linearly for other sizes); USS is per process, USS/node all processes' over the nodes; 'nodes gone' = every node exited and reaped", SCALE_COLUMNS, result["rows"], SCALE_TARGETS)]
    return result


def _sim(args, progress) -> dict:
    from ctl.bench import sim

    burst = sim.burst(args.nodes, args.seed, interval=args.interval, progress=progress)
    rows = list(burst)
    tables = [(f"simulated burst on a {args.nodes}-node tree (seed {args.seed}, a round every {args.interval:g} s); "
               "ratio = makespan / LB", SIM_COLUMNS, burst)]
    notes = []
    if args.snapshots:
        progress(f"sim: heap plan on {args.snapshots} snapshots")
        p = sim.plan_properties(args.snapshots)
        rows.append(p)
        notes.append(f"heap plan on {p['snapshots']:,} random snapshots, applied one Move per pair: makespan rose "
                     f"{p['makespan_rose']} times; a re-plan moved tasks in {p['replanned']} ({p['replanned_pct']} %), at most "
                     f"{p['replanned_most']}; worst (M - W/m) / q {p['worst_gap_per_q']} (proven bound {p['gap_bound']} (1 - 1/m)); "
                     f"{p['burst_snapshots']:,} burst snapshots: worst makespan / LB {p['burst_worst_ratio']}")
    if args.scale:
        big = sim.scale(seed=args.seed, progress=progress)
        rows += big
        tables.append(("simulated waves (message bound: 2|E| for echo)", SIM_SCALE_COLUMNS, big, SIM_SCALE_TARGETS))
    return {"bench": "sim", "rows": rows, "_tables": tables, "_notes": notes}

