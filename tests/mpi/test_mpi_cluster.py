"""A cluster across three MPI ranks on this machine, started by a real mpiexec: every
ctl command through the published topology, a balancing round that moves tasks from one
rank's node to another rank's, Finn, idle ranks that use no CPU, a stop by SIGTERM to
mpiexec and a killed rank — each time nothing left, by pid, and no MPI shared memory."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest

from mpi_launch import shm_files
from daemon.mpi import share
from daemon.topology import load

pytestmark = pytest.mark.e2e

IDLE_WINDOW = 2.0  # seconds of CPU use measured on idle ranks
IDLE_CPU_LIMIT = 0.2  # seconds of CPU a rank may use in that window (a spinning one uses ~2)


def rank_of(ranks: dict, node: str) -> int:
    return next(r for r, info in ranks.items() if node in info["nodes"])


def test_three_ranks_echo_balance_finn_stop(mpi_env, shm_before):
    topo = mpi_env.topology("demo.toml", rebalance_interval=0)
    names = load(topo).names
    run = mpi_env.launch(3, topo)
    run.wait_published()
    ranks = run.ranks()
    assert sorted(ranks) == [0, 1, 2]
    assert [info["nodes"] for _, info in sorted(ranks.items())] == [share(names, r, 3) for r in range(3)]
    assert {info["address"] for info in ranks.values()} == {"127.0.0.1"}  # one machine: loopback
    live = load(run.publish)
    assert live.names == names
    rank_pids = {info["pid"] for info in ranks.values()}
    assert len(rank_pids) == 3

    snap = mpi_env.ctl_json("echo", "-t", run.publish)
    assert sorted(n["name"] for n in snap["nodes"]) == sorted(names)

    # Load one node of rank 0 far beyond its CPUs; the round must hand tasks to nodes
    # that other ranks run (their sockets are in other processes, reached over TCP).
    source = ranks[0]["nodes"][0]
    mpi_env.ctl_json("submit", source, "--tasks", "40", "--cost", "20", "-t", run.publish)
    res = mpi_env.ctl_json("rebalance", "-t", run.publish)
    assert res["moved"] > 0, res
    crossing = [m for m in res["moves"] if rank_of(ranks, m["from"]) != rank_of(ranks, m["to"])]
    assert crossing, f"no move left rank {rank_of(ranks, source)}: {res['moves']}"
    deadline = time.monotonic() + 60
    while True:  # the moved tasks arrive: the receivers' echo samples count them
        snap = mpi_env.ctl_json("echo", "-t", run.publish)
        have = {n["name"]: n["queued"] + n["running"] for n in snap["nodes"]}
        if all(have[m["to"]] > 0 for m in crossing):
            break
        assert time.monotonic() < deadline, f"moved tasks never arrived: {crossing} {have}"
        time.sleep(0.2)

    res = mpi_env.ctl_json("finn", "--tasks", "1", "--cost", "0.1", "-t", run.publish)
    assert sorted(res["decided"]) == sorted(names) and res["undecided"] == []

    # MPI is quiet while the cluster serves: an idle rank sleeps.
    procs = [psutil.Process(pid) for pid in rank_pids]
    before = [sum(p.cpu_times()[:2]) for p in procs]
    time.sleep(IDLE_WINDOW)
    used = [sum(p.cpu_times()[:2]) - b for p, b in zip(procs, before)]
    assert max(used) < IDLE_CPU_LIMIT, f"CPU seconds used by idle ranks in {IDLE_WINDOW} s: {used}"

    assert len(run.alive()) >= 1 + 1 + 3 + len(names)  # mpiexec, hydra's proxy, ranks, nodes
    run.stop()
    run.wait_gone()
    assert run.proc.returncode == 0, run.output()
    assert not run.publish.exists(), "the published topology outlived the cluster"
    assert not {f for f in shm_files() - shm_before if f.startswith("mpich")}, "MPI shared memory left"
    for r in range(3):  # each rank's supervisor recorded a clean stop
        record = (mpi_env.home / "demo" / f"rank-{r}" / "cluster.json").read_text()
        assert '"state": "stopped"' in record


def test_killed_rank_takes_everything_with_it(mpi_env, shm_before):
    topo = mpi_env.topology("demo.toml", rebalance_interval=0)
    run = mpi_env.launch(3, topo)
    run.wait_published()
    ranks = run.ranks()
    mpi_env.ctl_json("echo", "-t", run.publish)
    everything = run.alive()
    assert len(everything) >= 1 + 1 + 3 + 15
    os.kill(ranks[1]["pid"], signal.SIGKILL)
    took = run.wait_gone()  # a generous deadline; the time is reported, not asserted
    print(f"a SIGKILLed rank: all {len(everything)} processes gone in {took:.2f} s")
    assert run.proc.returncode != 0
    assert not {f for f in shm_files() - shm_before if f.startswith("mpich")}, "MPI shared memory left"
