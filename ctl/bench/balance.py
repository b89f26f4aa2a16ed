"""Balancing on a real cluster: the burst per policy, and a queue of millions.

``burst``: a real ``ctl start`` of the topology (default topologies/seed.toml, on free
ports, the supervisor's own balancing off); ``tasks`` tasks of ``cost`` seconds are
submitted at node ``at``, and this process runs a balancing round of the policy every
``interval`` seconds through :class:`daemon.operator.Operator` (policy ``none``: no
round), with an echo every ``poll`` seconds between rounds to see the load. Its rounds
come on that clock and whenever a node asks for one (``balance.watch``, as the
supervisor's balancer: daemon/core/asking.py); ``triggers=False`` (``--clock-only``):
on the clock alone, the first one as the burst lands, as before the nodes asked. Policy
``supervisor`` measures from outside: the supervisor balances (``rebalance_interval`` =
``interval``, with its balancing triggers), and this process only submits and polls
with an echo every ``poll`` seconds, as a user would with ``ctl echo``. The
makespan runs from just before the submit to the end of the first echo that finds
every task done (so it is an upper bound, by at most one poll and one wave). The
yardstick is LB = max(total work / total cpus, one task's cost): ratio = makespan / LB
(the target for ``heap``: at most 1.2, BENCHMARKS.md). Every echo is checked against the
accounting rule (daemon/core/tasks.py ``account``). The timeline (imbalance and each
node's work per CPU at each echo) is kept for the plots.

``queue``: ``queue`` tasks submitted to node ``at`` (100,000 per submit), then
``rounds`` balancing rounds back to back, each timed as ``Operator.rebalance`` measures
it (echo with detail, plan, moves acknowledged by the donors, echo again); the largest
echo convergecast seen (``entries_bytes``) and the size of a full TRANSFER frame
(encoded by daemon/wire.py like the node's); then it waits until no move is in flight
and checks that every task is still counted exactly once. Targets (BENCHMARKS.md): a round
within 1 s, every frame within 1 MiB, nothing lost, for 2,000,000 tasks.
"""

from __future__ import annotations

import os
import time

from ctl.bench.cluster import BenchError, ROOT, Cluster, free_base_port

DEFAULT_TOPOLOGY = "seed"  # a shipped topology (ctl/shipped.py)
SUPERVISOR = "supervisor"  # burst: no rounds from here, the supervisor's own balancing


def supervisor_rounds(run_dir) -> int:
    """Balancing rounds the supervisor logged in ``run_dir`` so far (daemon/cluster/balancer.py)."""
    return sum(line.count("balancing round:") for f in sorted(run_dir.glob("*.log"))
               for line in f.read_text(errors="replace").splitlines())


def bench_toml(path: str, interval: float = 0) -> str:
    """The topology at ``path`` named ``bench``, on free ports, its supervisor balancing
    every ``interval`` seconds (0: off)."""
    import tomllib

    import tomli_w

    with open(path, "rb") as f:
        data = tomllib.load(f)
    count = len(data.get("node", []))
    data.setdefault("cluster", {}).update(name="bench", base_port=free_base_port(count), operator_port_offset=count,
                                          rebalance_interval=interval)
    return tomli_w.dumps(data)


def burst(policy: str, path: str = DEFAULT_TOPOLOGY, tasks: int = 152, cost: float = 0.5, at: str = "subserviate",
          interval: float = 0.5, poll: float = 0.1, timeout: float = 600.0, progress=lambda line: None,
          triggers: bool = True) -> dict:
    from daemon.core.asking import RoundGate
    from daemon.core.tasks import account
    from daemon.operator import Operator

    outside = policy == SUPERVISOR  # the cluster balances itself; this process only watches
    with Cluster(bench_toml(path, interval if outside else 0)) as cluster:
        topo = cluster.topology
        topo.node(at)  # names an unknown node
        names = list(topo.names)
        cpus = {n: topo.node(n).cpus for n in names}
        lb = max(tasks * cost / sum(cpus.values()), cost)
        timeline, rounds, moved = [], 0, 0
        rounding = policy not in ("none", SUPERVISOR)
        asking = rounding and triggers  # rounds on the clock and at the nodes' asks
        with Operator(topo, timeout=10.0, run_dir=cluster.run_dir) as op, \
                Operator(topo, timeout=10.0, run_dir=cluster.run_dir) as listener:
            op.echo()  # connected before the clock starts
            if asking:
                listener.watch_balance()
                listener.ping()  # each node's pong follows its watch: every node is watched
            t0 = time.perf_counter()
            op.submit(at, tasks, cost, label="bench")
            # the clock alone: a round as the burst lands, then one every interval
            gate = RoundGate(interval if rounding else 0, t0 - (0 if asking else interval))
            last_note = t0
            while True:
                now = time.perf_counter()
                if gate.start(now):
                    res = op.rebalance(policy)
                    rounds += 1
                    moved += res["moved"]
                    gate.finish(time.perf_counter(), any(n["queued"] for n in res["after"]["nodes"]))
                    snaps = [res["before"], res["after"]] if res["moves"] else [res["before"]]
                else:
                    due = gate.due()
                    wait = max(0.0, min(poll, poll if due is None else due - now))
                    if asking:
                        for msg in listener.balance_wanted(wait):
                            gate.ask(msg["reason"], time.perf_counter())
                        due = gate.due()
                        if due is not None and due <= time.perf_counter():
                            continue  # a round is due: no echo before it
                    else:
                        time.sleep(wait)
                    snaps = [op.echo()]
                done = False
                for snap in snaps:
                    books = account(snap["nodes"])
                    if not books["balanced"] or books["submitted"] != tasks:
                        raise BenchError(f"accounting broken at t={time.perf_counter() - t0:.2f} s: {books}")
                    t = time.perf_counter() - t0
                    per = {n["name"]: n["work"] / n["cpus"] for n in snap["nodes"]}
                    total = sum(n["work"] for n in snap["nodes"])
                    worst = max(per.values())
                    timeline.append({"t": round(t, 3), "imbalance": round(worst / (total / sum(cpus.values())), 3) if total > 0 else 1.0,
                                     "load": [round(per.get(n, 0.0), 3) for n in names]})
                    done = done or books["done"] == tasks
                if done:
                    makespan = time.perf_counter() - t0
                    if outside:  # every task landed at ``at``: one done elsewhere was moved
                        moved = sum(n["done"] for n in snap["nodes"] if n["name"] != at)
                        rounds = supervisor_rounds(cluster.run_dir)
                    break
                if time.perf_counter() - t0 > timeout:
                    raise BenchError(f"burst not done after {timeout:.0f} s ({books})")
                if time.perf_counter() - last_note > 5.0:
                    last_note = time.perf_counter()
                    progress(f"balance {policy}: {time.perf_counter() - t0:.0f} s, {books['done']}/{tasks} done")
    return {"scenario": "burst", "policy": policy, "topology": path, "tasks": tasks, "cost": cost, "at": at,
            "interval_s": interval, "triggers": asking or outside, "makespan_s": round(makespan, 3), "lb_s": round(lb, 3),
            "ratio": round(makespan / lb, 3), "moved": moved, "rounds": rounds, "nodes": names,
            "timeline": timeline, "load_avg": round(os.getloadavg()[0], 2)}


def queue(tasks: int = 2_000_000, path: str = DEFAULT_TOPOLOGY, at: str = "subserviate", cost: float = 1.0,
          rounds: int = 3, progress=lambda line: None) -> dict:
    from daemon import wire
    from daemon.core.tasks import MAX_TRANSFER_TASKS, account
    from daemon.operator import Operator

    with Cluster(bench_toml(path)) as cluster:
        with Operator(cluster.topology, timeout=60.0, run_dir=cluster.run_dir) as op:
            t0 = time.perf_counter()
            left = tasks
            while left:
                op.submit(at, min(left, 100_000), cost, label="bench")
                left -= min(left, 100_000)
                progress(f"balance queue: {tasks - left:,}/{tasks:,} submitted")
            submit_s = time.perf_counter() - t0
            results = []
            for k in range(rounds):
                res = op.rebalance("heap")
                results.append({"round": k + 1, "elapsed_ms": res["elapsed_ms"], "moved": res["moved"],
                                "moves": len(res["moves"]), "imbalance_before": res["imbalance_before"],
                                "imbalance_after": res["imbalance_after"],
                                "entries_bytes": max(res["before"]["entries_bytes"], res["after"]["entries_bytes"])})
                progress(f"balance queue: round {k + 1}: {res['moved']:,} moved in {res['elapsed_ms']:.0f} ms")
            deadline = time.monotonic() + 120
            while True:
                snap = op.echo(detail=True)
                books = account(snap["nodes"])
                if not any(n["outgoing"] or n["unconfirmed"] for n in snap["nodes"]) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            held = sum(n["queued"] + n["running"] + n["done"] for n in snap["nodes"])
    sample_id = f"{at}:{time.time_ns() % 1_000_000_007:x}:{tasks}"
    transfer = wire.encode("transfer", time.time_ns(), move_id="m-18b0c0ffee00000-abcdef-0",
                           tasks=[[sample_id, "bench", cost]] * MAX_TRANSFER_TASKS, expires=time.time(), waves=[])
    return {"scenario": "queue", "tasks": tasks, "at": at, "submit_s": round(submit_s, 2), "rounds": results,
            "round_ms_max": max(r["elapsed_ms"] for r in results), "round_target_ms": 1000.0,
            "echo_bytes_max": max(r["entries_bytes"] for r in results), "transfer_bytes": len(transfer),
            "frame_target_bytes": 2**20, "balanced": books["balanced"], "submitted": books["submitted"],
            "found": held, "lost": tasks - held, "load_avg": round(os.getloadavg()[0], 2)}
