"""``ctl rebalance [-t T] [--policy heap|seed] [--every SECONDS] [--rounds N] [--json]``

One balancing round: an echo wave collects every node's tasks, the plan picks queued
tasks to move from the most loaded nodes to those with the most free CPUs, the donors
hand them over (exactly once: move id, acknowledgement, resend), and a second echo
measures the result. Prints each move and the imbalance (max/avg work per CPU, daemon/core/snapshot.py) before and
after.

Policies: ``heap`` (default: by expected finish time; a task moves only when it would end
earlier by more than half its cost, so tasks do not bounce) and ``seed`` (the original
lab's rule, kept as the baseline: each node at >= 75% of its cpus gives one task to the
node with most free cpus). ``--every`` repeats until Ctrl-C or ``--rounds`` rounds; with
``--json`` each round is one JSON object per line.
"""

ORDER = 50
HELP = "one balancing round: echo, plan, move queued tasks to free CPUs"
DESCRIPTION = __doc__


def add_arguments(p):
    from ctl.argtypes import integer, seconds
    from ctl.common import add_json_option, add_topology_option

    add_topology_option(p)
    p.add_argument("--policy", choices=("heap", "seed"), default="heap", help="the balancer's plan (default heap)")
    p.add_argument("--every", type=seconds("--every"), metavar="SECONDS", help="repeat every SECONDS until Ctrl-C (or --rounds)")
    p.add_argument("--rounds", type=integer("--rounds", 1), metavar="N", help="stop after N rounds (with --every)")
    p.add_argument("--timeout", type=seconds("--timeout", 600), default=5.0, metavar="SECONDS", help="deadline of each wave (default 5)")
    add_json_option(p)


def _print_round(res, topology) -> None:
    if not res["moves"]:
        print(f"no move needed (policy {res['policy']}); imbalance {_fmt(res['imbalance_before'])}")
        return
    for m in res["moves"]:
        note = "" if m["count"] == m["planned"] else f" (planned {m['planned']}; the rest had started)"
        print(f"  {m['from']} -> {m['to']}: {m['count']} task(s){note}")
    print(f"moved {res['moved']} task(s) in {len(res['moves'])} move(s); imbalance (max/avg work per CPU) "
          f"{_fmt(res['imbalance_before'])} -> {_fmt(res['imbalance_after'])}; {res['elapsed_ms']:.1f} ms")


def _fmt(imbalance: float | None) -> str:
    return "- (no work)" if imbalance is None else f"{imbalance:.2f}"


def run(args) -> int:
    import json
    import time

    from ctl.common import resolve_topology
    from ctl.output import print_json
    from daemon.operator import Operator

    topology = resolve_topology(args)
    rounds = args.rounds if args.every else 1
    done = 0
    with Operator(topology, timeout=args.timeout) as op:
        while rounds is None or done < rounds:
            t0 = time.monotonic()
            res = op.rebalance(args.policy)
            done += 1
            out = {k: v for k, v in res.items() if k not in ("before", "after")}
            if args.json:
                if args.every:
                    print(json.dumps(out), flush=True)
                else:
                    print_json(out)
            else:
                if args.every:
                    print(f"round {done}:")
                _print_round(res, topology)
            if rounds is not None and done >= rounds:
                break
            time.sleep(max(0.0, args.every - (time.monotonic() - t0)))
    return 0
