"""A cluster across three MPI ranks started by a real mpiexec, on two sites: this machine,
and (as root) three network namespaces with their own host names, joined by a bridge and
reached through a launcher agent (tests/mpi/netns.py). On each: every ctl command through
the published topology, a balancing round that moves tasks from one rank's node to other
ranks' nodes, Finn, idle ranks that use no CPU, a stop (``ctl stop -t FILE`` on this
machine, SIGTERM to mpiexec across the namespaces) and a killed rank; each time nothing is
left (checked by pid, mpiexec and hydra's proxies included) and no MPI shared memory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

import netns
from daemon.mpi import share
from daemon.topology import load
from mpi_launch import ROOT, shm_files

# one MPI launch at a time (the xdist group keeps them on one worker of `make test`): each
# test compares /dev/shm before and after, where another launch's files would show
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("mpi")]

IDLE_WINDOW = 2.0  # seconds of CPU use measured on idle ranks
IDLE_CPU_LIMIT = 0.2  # seconds of CPU a rank may use in that window (a spinning one uses ~2)
RANKS = 3


@pytest.fixture(scope="module")
def lab():
    """Three namespaces for the module's tests; deleted afterwards, on failure too."""
    yield from netns.lab_fixture("three-namespace site", f"{os.getpid() % 10000}", 250)


class Site:
    """Where the ranks run and where ctl runs from."""

    def __init__(self, env, lab=None):
        self.env, self.lab = env, lab
        if lab is not None:
            env.env[netns.HOSTS_ENV] = lab.agent_env()

    def launch(self, topology):
        if self.lab is None:
            return self.env.launch(RANKS, topology)
        return self.env.launch(RANKS, topology, launcher=self.lab.launcher_args(),
                               wrap=lambda command: self.lab.inside(1, command))

    def ctl_json(self, *args):
        command = [sys.executable, "-m", "ctl", *map(str, args), "--json"]
        if self.lab is not None:
            command = self.lab.inside(2, command)  # a client inside a namespace, like the ranks
        done = subprocess.run(command, env=self.env.env, cwd=ROOT, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"ctl {' '.join(map(str, args))}: {done.returncode}\n{done.stderr}"
        return json.loads(done.stdout)

    def addresses(self):
        return ["127.0.0.1"] * RANKS if self.lab is None else self.lab.addresses

    def hosts(self):
        return None if self.lab is None else [name for _, _, name in self.lab.hosts]


@pytest.fixture(params=["one machine", "three namespaces"])
def site(request, mpi_env):
    if request.param == "one machine":
        return Site(mpi_env)
    return Site(mpi_env, request.getfixturevalue("lab"))


def rank_of(ranks: dict, node: str) -> int:
    return next(r for r, info in ranks.items() if node in info["nodes"])


def test_three_ranks_echo_balance_finn_stop(site, mpi_env, shm_before):
    topo = mpi_env.topology("demo.toml", rebalance_interval=0)
    names = load(topo).names
    run = site.launch(topo)
    run.wait_published()
    ranks = run.ranks()
    assert sorted(ranks) == list(range(RANKS))
    assert [info["nodes"] for _, info in sorted(ranks.items())] == [share(names, r, RANKS) for r in range(RANKS)]
    assert [info["address"] for _, info in sorted(ranks.items())] == site.addresses()
    if site.hosts():
        assert [info["host"] for _, info in sorted(ranks.items())] == site.hosts()
    assert load(run.publish).names == names
    rank_pids = {info["pid"] for info in ranks.values()}
    assert len(rank_pids) == RANKS

    snap = site.ctl_json("echo", "-t", run.publish)
    assert sorted(n["name"] for n in snap["nodes"]) == sorted(names)

    # Load one node of rank 0 far beyond its CPUs; the round must hand tasks to nodes
    # that other ranks run (their sockets are in other processes, reached over TCP).
    source = ranks[0]["nodes"][0]
    site.ctl_json("submit", source, "--tasks", "40", "--cost", "20", "-t", run.publish)
    res = site.ctl_json("rebalance", "-t", run.publish)
    assert res["moved"] > 0, res
    crossing = [m for m in res["moves"] if rank_of(ranks, m["from"]) != rank_of(ranks, m["to"])]
    assert crossing, f"no move left rank {rank_of(ranks, source)}: {res['moves']}"
    deadline = time.monotonic() + 60
    while True:  # the moved tasks arrive: the receivers' echo samples count them
        snap = site.ctl_json("echo", "-t", run.publish)
        have = {n["name"]: n["queued"] + n["running"] for n in snap["nodes"]}
        if all(have[m["to"]] > 0 for m in crossing):
            break
        assert time.monotonic() < deadline, f"moved tasks never arrived: {crossing} {have}"
        time.sleep(0.2)

    res = site.ctl_json("finn", "--tasks", "1", "--cost", "0.1", "-t", run.publish)
    assert sorted(res["decided"]) == sorted(names) and res["undecided"] == []

    # MPI is quiet while the cluster serves: an idle rank sleeps.
    procs = [psutil.Process(pid) for pid in rank_pids]
    before = [sum(p.cpu_times()[:2]) for p in procs]
    time.sleep(IDLE_WINDOW)
    used = [sum(p.cpu_times()[:2]) - b for p, b in zip(procs, before)]
    assert max(used) < IDLE_CPU_LIMIT, f"CPU seconds used by idle ranks in {IDLE_WINDOW} s: {used}"

    assert len(run.alive()) >= 1 + 1 + RANKS + len(names)  # mpiexec, a proxy, ranks, nodes
    if site.lab is None:
        # On rank 0's machine the local commands find rank 0 as the cluster's supervisor,
        # and `ctl stop` stops rank 0, whose STOP stops the other ranks.
        status = site.ctl_json("status", "-t", run.publish)
        assert status["running"] and status["supervisor"]["pid"] == ranks[0]["pid"]
        assert sorted(n["name"] for n in status["nodes"] if n["alive"]) == sorted(ranks[0]["nodes"])
        top = mpi_env.ctl("top", "--once", "-t", run.publish)
        assert top.returncode == 0 and f"{len(names)}/{len(names)} nodes up" in top.stdout, top.stderr
        site.ctl_json("stop", "-t", run.publish)
    else:
        run.stop()  # SIGTERM to mpiexec, which hydra forwards to every rank
    run.wait_gone()
    assert run.proc.returncode == 0, run.output()
    assert not run.publish.exists(), "the published topology outlived the cluster"
    assert not {f for f in shm_files() - shm_before if f.startswith("mpich")}, "MPI shared memory left"
    for folder in ["demo", *(f"demo.rank-{r}" for r in range(1, RANKS))]:  # each rank's record: a clean stop
        record = json.loads((mpi_env.home / folder / "cluster.json").read_text())
        assert record["state"] == "stopped", record
        states = {name: (n["state"], n["last_exit"]) for name, n in record["nodes"].items()}
        if folder != "demo" or site.lab is not None:  # `ctl stop` rewrites rank 0's record itself
            assert all(state == "STOPPED" for state, _ in states.values()), (folder, states)


def test_killed_rank_takes_everything_with_it(site, mpi_env, shm_before):
    topo = mpi_env.topology("demo.toml", rebalance_interval=0)
    run = site.launch(topo)
    run.wait_published()
    ranks = run.ranks()
    site.ctl_json("echo", "-t", run.publish)
    everything = run.alive()
    assert len(everything) >= 1 + 1 + RANKS + 15
    os.kill(ranks[1]["pid"], signal.SIGKILL)
    took = run.wait_gone()  # a generous deadline; the time is reported, not asserted
    print(f"a SIGKILLed rank: all {len(everything)} processes gone in {took:.2f} s")
    assert run.proc.returncode != 0
    assert not {f for f in shm_files() - shm_before if f.startswith("mpich")}, "MPI shared memory left"


def test_ranks_serve_their_nodes_two_a_process(mpi_env, shm_before):
    """``nodes_per_process = 2`` under mpiexec: each rank's supervisor groups its share of
    the nodes (daemon/cluster/supervisor.py, the same start as ``ctl start``), so each rank runs
    half as many node processes, its children; waves cross ranks and processes; the stop
    leaves nothing."""
    topo = mpi_env.topology("demo.toml", rebalance_interval=0, nodes_per_process=2)
    names = load(topo).names
    site = Site(mpi_env)
    run = site.launch(topo)
    run.wait_published()
    ranks = run.ranks()
    for rank, info in sorted(ranks.items()):
        folder = "demo" if rank == 0 else f"demo.rank-{rank}"
        record = json.loads((mpi_env.home / folder / "cluster.json").read_text())
        pids = {record["nodes"][name]["pid"] for name in info["nodes"]}
        assert len(pids) == -(-len(info["nodes"]) // 2), (rank, info["nodes"], pids)
        assert all(psutil.Process(pid).ppid() == info["pid"] for pid in pids), (rank, pids)
    snap = site.ctl_json("echo", "-t", run.publish)
    assert sorted(n["name"] for n in snap["nodes"]) == sorted(names) and not snap["missing"]
    res = site.ctl_json("finn", "--tasks", "1", "--cost", "0.1", "-t", run.publish)
    assert sorted(res["decided"]) == sorted(names) and res["undecided"] == []
    site.ctl_json("stop", "-t", run.publish)
    run.wait_gone()
    assert run.proc.returncode == 0, run.output()
    assert not {f for f in shm_files() - shm_before if f.startswith("mpich")}, "MPI shared memory left"


def test_the_published_topology_and_the_ranks_run_directories_agree(mpi_env, shm_before):
    """The published file and each rank's cluster.json name every node at the same
    endpoint, before and after a node of rank 1 is killed and restarted by its rank;
    through the published file every view answers with every node again, and no command
    calls the cluster stopped while rank 0's record covers only its share."""
    topo = mpi_env.topology("demo.toml", rebalance_interval=0)
    site = Site(mpi_env)
    run = site.launch(topo)
    run.wait_published()
    ranks = run.ranks()
    published = load(run.publish)

    def records():
        return {r: json.loads((mpi_env.home / ("demo" if r == 0 else f"demo.rank-{r}") / "cluster.json").read_text())
                for r in ranks}

    def disagreeing(recorded) -> list[str]:
        return [f"rank {r}: {name} at {entry['endpoint']}, published {published.endpoint(name)}"
                for r, record in recorded.items() for name, entry in record["nodes"].items()
                if entry["endpoint"] != published.endpoint(name)] + [
                f"rank {r} records {sorted(record['nodes'])}, runs {sorted(ranks[r]['nodes'])}"
                for r, record in recorded.items() if sorted(record["nodes"]) != sorted(ranks[r]["nodes"])]

    before = records()
    assert not disagreeing(before), disagreeing(before)
    victim = ranks[1]["nodes"][0]
    os.kill(before[1]["nodes"][victim]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:  # restarted by rank 1's supervisor, at the endpoint it had
        entry = records()[1]["nodes"][victim]
        if entry["state"] == "RUNNING" and entry["pid"] != before[1]["nodes"][victim]["pid"]:
            break
        assert time.monotonic() < deadline, f"{victim} was not restarted: {entry}"
        time.sleep(0.2)
    assert not disagreeing(records()), disagreeing(records())
    while True:  # a restarted node joins waves begun after its epoch
        echo = subprocess.run([sys.executable, "-m", "ctl", "echo", "-t", str(run.publish), "--json", "--timeout", "3"],
                              env=mpi_env.env, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=120)
        assert "is stopped" not in echo.stderr and "never started" not in echo.stderr, echo.stderr
        if echo.returncode == 0:
            break
        assert time.monotonic() < deadline + 60, echo.stdout + echo.stderr
    assert sorted(n["name"] for n in json.loads(echo.stdout)["nodes"]) == sorted(published.names)
    top = mpi_env.ctl("top", "--once", "-t", run.publish)
    assert top.returncode == 0 and f"{len(published.names)}/{len(published.names)} nodes up" in top.stdout, top.stderr
    site.ctl_json("stop", "-t", run.publish)
    run.wait_gone()
    assert run.proc.returncode == 0, run.output()
