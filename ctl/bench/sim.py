"""The deterministic simulator's benchmarks: the burst per policy, the heap plan's
properties on random snapshots, and how far echo and Finn waves scale.

``burst``: a ``topogen`` topology (cpus 1 to 8 a node), ``daemon.sim.balance.simulate``
with the burst scenario once per policy: simulated makespan against LB = max(total work
/ total cpus, longest task), tasks moved, rounds, and the wall time of the simulation
on this machine. Reproducible from the seed.

``plan_properties``: on ``count`` random snapshots (2-8 nodes, 1-6 cpus, up to 20
queued tasks, round and arbitrary costs), how often applying the heap plan one Move per
(source, dest) pair raised the model's makespan or left something for an immediate
re-plan (in the plan's own order, both are proven never to happen: daemon/core/plan.py),
how close it came to its bound, and makespan / LB on burst snapshots with at least 7
tasks per CPU.

``scale``: echo on a generated tree, Finn on a generated DAG and, for contrast, on a
strongly connected graph: wall and CPU time (the machine is shared), events, messages
against their bounds, the checks of the simulator (``problems``), peak RSS.
"""

from __future__ import annotations

import random
import resource
import time


def timed(fn, *args, **kwargs):
    """(result, wall seconds, CPU seconds)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start, time.process_time() - cpu


def burst(
    nodes: int = 1000,
    seed: int = 1,
    shape: str = "tree",
    interval: float = 1.0,
    policies=("heap", "seed", "none"),
    progress=lambda line: None,
) -> list[dict]:
    from daemon.sim.balance import simulate
    from daemon.topogen import generate

    topology = generate(nodes, shape, seed)
    rows = []
    for policy in policies:
        progress(f"sim: burst on a {nodes}-node {shape}, policy {policy}")
        report, wall, cpu = timed(simulate, topology, policy=policy, seed=seed, interval=interval)
        rows.append(
            {
                "case": "burst",
                "policy": policy,
                "nodes": report["nodes"],
                "cpus": report["cpus"],
                "tasks": report["tasks"],
                "makespan_s": round(report["makespan"], 3),
                "lb_s": round(report["lower_bound"], 3),
                "ratio": round(report["ratio"], 3),
                "moved": report["moves"],
                "rounds": report["rounds"],
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "seed": seed,
                "shape": shape,
                "interval_s": interval,
            }
        )
    return rows


def random_snapshot(r: random.Random):
    from daemon.core.plan import NodeLoad

    loads = []
    for i in range(r.randint(2, 8)):
        cpus = r.randint(1, 6)
        cost = lambda: r.choice([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, r.uniform(0.01, 10.0)])  # noqa: E731
        running = tuple(cost() for _ in range(r.randint(0, cpus)))
        queued = tuple((f"n{i}-t{k}", cost()) for k in range(r.randint(0, 20 if i < 2 else 4)))
        loads.append(NodeLoad(f"n{i}", cpus, running, queued))
    return loads


def burst_snapshot(r: random.Random):
    from daemon.core.plan import NodeLoad

    n = r.randint(2, 8)
    cpus = [r.randint(1, 4) for _ in range(n)]
    queues: list[list] = [[] for _ in range(n)]
    for k in range(7 * sum(cpus) + r.randint(0, 20)):
        queues[r.randint(0, min(2, n - 1))].append((f"t{k}", r.uniform(0.5, 1.5)))
    return [
        NodeLoad(f"n{i}", cpus[i], tuple(r.uniform(0.0, 1.5) for _ in range(r.randint(0, cpus[i]))), tuple(queues[i]))
        for i in range(n)
    ]


def plan_properties(count: int) -> dict:
    from daemon.core.plan import Move, apply_moves, lower_bound, makespan, plan_moves, plan_steps

    rose = replanned = most = 0
    worst_gap = 0.0
    for seed in range(count):
        loads = random_snapshot(random.Random(seed))
        grouped = apply_moves(loads, plan_moves(loads))
        rose += makespan(grouped) > makespan(loads)
        again = sum(len(m.task_ids) for m in plan_moves(grouped))
        replanned += again > 0
        most = max(most, again)
        ordered = apply_moves(loads, [Move(a, b, (t,)) for a, b, t in plan_steps(loads)])
        m = sum(n.cpus for n in loads)
        work = sum(n.work for n in loads)
        q = max((c for n in loads for _, c in n.queued), default=0.0)
        longest_running = max((x for n in loads for x in n.running), default=0.0)
        if q > 0 and makespan(ordered) > longest_running:
            worst_gap = max(worst_gap, (makespan(ordered) - work / m) / q)
    worst_ratio = 0.0
    bursts = max(1, count // 7)
    for seed in range(bursts):
        loads = burst_snapshot(random.Random(seed))
        ordered = apply_moves(loads, [Move(a, b, (t,)) for a, b, t in plan_steps(loads)])
        worst_ratio = max(worst_ratio, makespan(ordered) / lower_bound(loads))
    return {
        "case": "plan properties",
        "snapshots": count,
        "makespan_rose": rose,
        "replanned": replanned,
        "replanned_pct": round(100 * replanned / count, 1),
        "replanned_most": most,
        "worst_gap_per_q": round(worst_gap, 3),
        "gap_bound": 1.5,
        "burst_snapshots": bursts,
        "burst_worst_ratio": round(worst_ratio, 3),
    }


def scale(
    echo_nodes: int = 100_000,
    finn_nodes: int = 10_000,
    strong_nodes: int = 1_000,
    seed: int = 1,
    progress=lambda line: None,
) -> list[dict]:
    from daemon.sim.echo import simulate_echo
    from daemon.sim.finn import simulate_finn
    from daemon.sim.graph import IndexedGraph
    from daemon.topogen import generate

    rows = []
    for kind, n, shape in (("echo", echo_nodes, "tree"), ("finn", finn_nodes, "dag"), ("finn", strong_nodes, "strong")):
        if not n:
            continue
        progress(f"sim: {kind} on a {n}-node {shape}")
        graph = IndexedGraph(generate(n, shape, seed))
        if kind == "echo":
            run, wall, cpu = timed(simulate_echo, graph, seed=seed)
            problems = run.problems(graph)
            bound = 2 * run.links
            extra = {"decided_ms": round(run.decided_at, 3), "entries": len(run.entries or ())}
        else:
            run, wall, cpu = timed(simulate_finn, graph, seed=seed)
            problems = run.problems()
            bound = None
            extra = {
                "max_per_channel": run.max_per_channel,
                "channel_bound": 2 * n,
                "decided": len(run.decisions),
                "last_decision_ms": round(run.last_decision, 3),
            }
        rows.append(
            {
                "case": kind,
                "shape": shape,
                "nodes": n,
                "edges": graph.edge_count,
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "events": run.events,
                "messages": run.messages,
                "message_bound": bound,
                "checks": "ok" if not problems else str(problems),
                "seed": seed,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                **extra,
            }
        )
    return rows
