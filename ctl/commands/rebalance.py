"""``ctl rebalance [-t T] [--policy heap|seed] [--every SECONDS] [--rounds N] [--json]``

One balancing round: an echo wave collects every node's tasks, the plan picks queued
tasks to move from the most loaded nodes to those with the most free CPUs, the donors
hand them over (exactly once: move id, acknowledgement, resend), and a second echo
measures the result. Prints each move and the imbalance (the largest remaining work per CPU over the
average) before and after.

Policies: ``heap`` (default: by expected finish time; a task moves only when it would end
earlier by more than half its cost, so tasks do not bounce) and ``seed`` (the original
lab's rule, kept as the baseline: each node at >= 75% of its cpus gives one task to the
node with most free cpus). ``--rounds N`` runs N rounds, back to back or, with
``--every``, one every SECONDS; ``--every`` alone repeats until Ctrl-C. A round that
fails (a wave timed out, a node is stuck) is reported and the next one runs anyway;
the exit status is then 1. With ``--json`` and more than one round, each round is one
JSON object per line (``{"round": N, "error": "..."}`` for a failed one).

``--trace FILE`` writes the round's trace to FILE: every node's recorded steps of its
two echo waves and its moves (with several rounds, the last round's).

Limits: the balancer's echo lists a node's queued tasks one by one while the queue holds
at most {listed} (fewer in clusters of thousands of nodes, so that the wave's answer
fits one frame); a longer queue is summarised as runs of (cost, count), and the plan
then moves counts from the donor's tail. A donor gives one receiver at most {transfer}
tasks per round, so a huge queue drains over several rounds.
"""

from daemon.core.node import QUEUE_DETAIL_LIMIT
from daemon.core.tasks import MAX_TRANSFER_TASKS

ORDER = 50
HELP = "one balancing round: echo, plan, move queued tasks to free CPUs"
# The limits come from the node's core (daemon/core/node.py listing_limit, daemon/core/
# tasks.py MAX_TRANSFER_TASKS; daemon/core/plan.py, "Bulk plans").
DESCRIPTION = __doc__.replace("{listed}", f"{QUEUE_DETAIL_LIMIT:,}").replace("{transfer}", f"{MAX_TRANSFER_TASKS:,}")


def add_arguments(p):
    from ctl.argtypes import integer, seconds
    from ctl.common import add_json_option, add_topology_option, add_trace_option

    add_topology_option(p)
    p.add_argument("--policy", choices=("heap", "seed"), default="heap", help="the balancer's plan (default heap)")
    p.add_argument("--every", type=seconds("--every"), metavar="SECONDS", help="repeat every SECONDS until Ctrl-C (or --rounds)")
    p.add_argument("--rounds", type=integer("--rounds", 1), metavar="N", help="run N rounds (default 1; with --every: until Ctrl-C)")
    p.add_argument("--timeout", type=seconds("--timeout", 600), default=5.0, metavar="SECONDS", help="deadline of each wave (default 5)")
    add_trace_option(p)
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

    from ctl.common import resolve_cluster, save_trace
    from ctl.output import print_json
    from daemon import trace
    from daemon.errors import UserError
    from daemon.operator import Operator

    topology = resolve_cluster(args)
    if args.trace:
        trace.check_path(args.trace)
    last = None
    rounds = args.rounds if args.rounds else (None if args.every else 1)
    lines = args.every is not None or rounds != 1  # one JSON object per round, per line
    done = failed = 0
    with Operator(topology, timeout=args.timeout) as op:
        while rounds is None or done < rounds:
            t0 = time.monotonic()
            done += 1
            if lines and not args.json:
                print(f"round {done}:", flush=True)
            try:
                res = op.rebalance(args.policy)
            except UserError as exc:
                if not lines:
                    raise
                failed += 1  # a wave timed out or a node is stuck: say so, go on
                if args.json:
                    print(json.dumps({"round": done, "error": str(exc)}), flush=True)
                else:
                    print(f"  failed: {exc}", flush=True)
            else:
                last = res
                out = {k: v for k, v in res.items() if k not in ("before", "after")}
                if args.json and lines:
                    print(json.dumps({"round": done, **out}), flush=True)
                elif args.json:
                    print_json(out)
                else:
                    _print_round(res, topology)
            if rounds is not None and done >= rounds:
                break
            if args.every:
                time.sleep(max(0.0, args.every - (time.monotonic() - t0)))
        if args.trace and last is not None:
            waves = list(dict.fromkeys([last["before"]["wave"], last["round_id"], last["after"]["wave"]]))
            if not save_trace(op, args.trace, waves, last["round_id"], "rebalance"):
                failed += 1
    return 1 if failed else 0
