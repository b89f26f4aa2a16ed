"""``ctl wait [--timeout S] [--from NODE] [--json]``: return once the cluster's work is over.

Starts a termination-detection wave (the wave kind ``termination``) at the initiator
(default: the first source node) and returns when it announces that
every task has run and no move is in flight. The detection is the algorithm's — a token
passing every node, held by a busy one, that comes home white only after a round in
which no node was busy — never a poll of the nodes' queues; it is never false for work
that entered before the final round began. Work submitted while ``ctl wait`` runs may or
may not be waited for: a submit at a node the final round's token has already left is
concurrent with the detection, and no algorithm can see it.

A node that does not take the token on (killed, stopped, restarted) ends the wave: the
node that handed it the token reports it. ``ctl wait`` then pings that node: if it
answers (it restarted: it cannot join a wave older than itself), a new wave starts;
if not, the command stops and names it (exit 1) rather than wait for a node that is not
there. ``--timeout`` (default 300 s) bounds the whole wait: work still running then is
said, with the nodes that do not answer (exit 1). Exit status: 0 when termination was
detected, 1 when not, 2 for bad arguments.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

ORDER = 55
HELP = "wait until every task has run and no move is in flight (termination detection)"
DESCRIPTION = __doc__
KIND = "termination"
PING = 1.0  # seconds a node has to answer the ping that asks whether it is still there


def add_arguments(p: Any) -> None:
    from ctl.argtypes import seconds
    from ctl.common import add_json_option, add_topology_option

    add_topology_option(p)
    p.add_argument("--from", dest="initiator", metavar="NODE", help="the initiator (default: the first source node)")
    p.add_argument(
        "--timeout",
        type=seconds("--timeout", 3600),
        default=300.0,
        metavar="SECONDS",
        help="give up after this long (default 300)",
    )
    p.add_argument(
        "--lost",
        type=seconds("--lost", 3600),
        default=5.0,
        metavar="SECONDS",
        help="a node silent this long when handed the token ends the wave (default 5)",
    )
    add_json_option(p)


Decision = tuple[str, dict[str, Any]]  # (deciding node, result)


def wait_loop(
    run_wave: Callable[[float], tuple[str, Decision | None]],
    ping: Callable[[list[str] | None], dict[str, bool]],
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    say: Callable[[str], None] = lambda text: None,
) -> dict[str, Any]:
    """Run waves until one detects termination, a node is gone, or ``timeout`` passes.

    ``run_wave(seconds)`` starts one wave with that budget and returns (wave id, the
    first decision or None if none came by its deadline); ``ping(names)`` says which of
    ``names`` (None: all) answer. Returns what ``ctl wait`` prints (module text)."""
    start = clock()
    out: dict[str, Any] = {
        "terminated": False,
        "reason": None,
        "wave": None,
        "initiator": None,
        "rounds": 0,
        "waves": 0,
        "lost": [],
        "dead": [],
        "elapsed_s": 0.0,
    }
    while True:
        left = timeout - (clock() - start)
        if left <= 0:
            out["reason"] = "timeout"
            break
        wave, decision = run_wave(left)
        out["wave"] = wave
        out["waves"] += 1
        if decision is None:  # no decision by the deadline: the initiator itself is silent?
            out["reason"] = "timeout"
            break
        node, result = decision
        if result.get("terminated") is True:
            out.update(terminated=True, initiator=node, rounds=result.get("rounds", 0))
            break
        if result.get("reason") == "lost":
            lost = str(result.get("node"))
            out["lost"].append(lost)
            if not ping([lost]).get(lost):
                out["reason"] = "dead"
                out["dead"] = [lost]
                break
            say(f"{lost} did not take the token of wave {wave} on (restarted or stalled); starting a new wave")
            continue
        out["reason"] = "timeout"
        out["rounds"] = result.get("rounds", 0)
        break
    if out["reason"] == "timeout":
        out["dead"] = sorted(name for name, up in ping(None).items() if not up)
    out["elapsed_s"] = round(clock() - start, 3)
    return out


def run(args: Any) -> int:
    import sys

    from ctl.common import resolve_cluster
    from ctl.output import print_json
    from daemon.operator import Operator

    topology = resolve_cluster(args)
    if args.initiator is not None:
        topology.node(args.initiator)
    with Operator(topology, timeout=PING) as op:
        initiator = args.initiator or op.default_initiator()

        def run_wave(budget: float) -> tuple[str, Decision | None]:
            res = op.wave(KIND, [initiator], params={"lost": args.lost}, timeout=budget)
            if res["decided"]:
                node = res["decided"][0]
                return res["wave"], (node, res["results"][node])
            if res["dead_initiators"]:  # said as the token lost at the initiator: pinged, named
                return res["wave"], (initiator, {"terminated": False, "reason": "lost", "node": initiator})
            return res["wave"], None

        def ping(names: list[str] | None) -> dict[str, bool]:
            return {name: pong is not None for name, pong in op.ping(names, PING).items()}

        out = wait_loop(run_wave, ping, args.timeout, say=lambda text: print(f"ctl wait: {text}", file=sys.stderr))
    if args.json:
        print_json(out)
    elif out["terminated"]:
        print(
            f"terminated: every task has run and no move is in flight (wave {out['wave']} from {out['initiator']}, "
            f"{out['rounds']} rounds, {out['waves']} wave{'s' if out['waves'] != 1 else ''}, {out['elapsed_s']:g} s)"
        )
    elif out["reason"] == "dead":
        print(
            f"ctl wait: node {out['dead'][0]} does not answer (killed or stopped?): termination cannot be detected "
            f"without it; its tasks wait in its journal until it is back",
            file=sys.stderr,
        )
    else:
        silent = f"; no answer from {', '.join(out['dead'])}" if out["dead"] else ""
        print(f"ctl wait: work still running after {args.timeout:g} s (wave {out['wave']}){silent}", file=sys.stderr)
    return 0 if out["terminated"] else 1
