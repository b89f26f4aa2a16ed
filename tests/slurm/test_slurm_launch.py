"""A cluster across three ranks launched by a real Slurm (tests/slurm/slurm_site.py: one
host, our own munged, slurmctld and slurmd): ``srun --mpi=pmi2 -n 3`` and an ``sbatch``
script running the same ``srun``, as README.md's "On a Slurm site" says to. Each time:
the ranks are Slurm's tasks of one job (their environment says so), echo and Finn over
the published topology reach every node, and a stop leaves nothing: every rank, node and
burner seen is gone (by pid and start time). ``scancel`` and ``ctl stop -t FILE`` stop
cleanly (each rank's record says so, no node failed, the published file is removed);
SIGTERM to srun makes Slurm SIGKILL the step, which still leaves no process. A rank
killed under ``srun -K`` ends the step, leaving nothing; ``srun`` without ``--mpi=pmi2``
is refused before anything starts."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from polling import wait_until

from daemon.mpi import share
from daemon.topology import load

# on the worker of the MPI tests' xdist group (`make test`): the session's Slurm is one per
# machine (conftest.py fails on another's daemons), and its launches' MPI shared memory would
# show in tests/mpi's /dev/shm comparisons
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("mpi")]

RANKS = 3
GONE_TIMEOUT = 60.0  # seconds for scancel to stop everything (Slurm's KillWait is 30 s)

SBATCH_SCRIPT = """#!/bin/sh
#SBATCH --job-name=echofinn-test
#SBATCH --ntasks={ranks}
#SBATCH --output={output}
srun -K --mpi=pmi2 {command}
"""


def srun(env, topology, publish, mpi="--mpi=pmi2"):
    return env.run_launcher(["srun", "-K", mpi, "-n", str(RANKS), "--job-name=echofinn-test",
                      *env.ranks_command(topology, publish)], publish)


def sbatch(env, topology, publish):
    """``sbatch --wait`` of a script like README.md's: it returns when the job ends."""
    script = env.tmp / "echofinn.sbatch"
    command = shlex.join(env.ranks_command(topology, publish))
    script.write_text(SBATCH_SCRIPT.format(ranks=RANKS, output=env.tmp / "job-%j.out", command=command))
    return env.run_launcher(["sbatch", "--wait", str(script)], publish)


def rank_record(env, rank: int) -> dict:
    """Rank ``rank``'s cluster.json (daemon/mpi.py: rank 0 in the cluster's usual folder)."""
    folder = "demo" if rank == 0 else f"demo.rank-{rank}"
    return json.loads((env.home / folder / "cluster.json").read_text())


def job_output(env) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(env.tmp.glob("job-*.out")))


def snapshot(env) -> dict:
    """Every live process carrying the test's home: (pid, start time) -> its command line."""
    seen = {}
    for proc in env.processes():
        try:
            seen[(proc.pid, proc.create_time())] = " ".join(proc.cmdline())[:80]
        except psutil.Error:
            pass
    return seen


def wait_all_gone(env, run, ours: dict, since: float, what: str) -> tuple[float, str]:
    """Poll until every process in ``ours`` is gone and no new one carries the home; fails
    naming them after GONE_TIMEOUT. Returns the seconds since ``since`` and the last of
    ``ours`` to go. The launcher is one of them, except ``sbatch --wait``: it asks for the
    job's state at growing intervals, up to 32 s apart, and may notice the end that late;
    it is only a client, and the caller stops it."""
    if run.command[0] == "sbatch":
        ours = {key: line for key, line in ours.items() if key[0] != run.proc.pid}
    gone_at = {}
    while True:
        now = time.monotonic()
        run.proc.poll()  # reap the launcher once it exits
        for key in ours:
            if key not in gone_at and env.gone(*key):
                gone_at[key] = now - since
        new = {key for key in snapshot(env) if key not in ours and key[0] != run.proc.pid}
        if len(gone_at) == len(ours) and not new:
            last = max(gone_at, key=gone_at.get)
            return now - since, f"pid {last[0]} ({ours[last]}) after {gone_at[last]:.1f} s"
        assert now - since < GONE_TIMEOUT, (
            f"{GONE_TIMEOUT:.0f} s after {what}: {[ours[k] for k in ours if k not in gone_at]}, new: {new}\n"
            f"{run.output()}{job_output(env)}")
        time.sleep(0.1)


def stop_by_scancel(slurm, env, run, job):
    done = slurm.command("scancel", job)
    assert done.returncode == 0, done.stderr


def ended(slurm, job: str) -> str | None:
    """How ``job`` ended as slurmctld shows it, or None while it is still COMPLETING."""
    state = slurm.job_state(job)
    return None if state == "COMPLETING" else state


def stop_by_ctl(slurm, env, run, job):
    """``ctl stop -t FILE`` on rank 0's machine: rank 0 stops, its STOP stops the others."""
    env.ctl_json("stop", "-t", run.publish)


def stop_by_sigterm_to_srun(slurm, env, run, job):
    """What Ctrl-C twice or ``kill`` of srun does: srun ends the step with SIGKILL."""
    run.stop()


@pytest.mark.parametrize("launch, stop, job_end", [
    (srun, stop_by_scancel, "CANCELLED"),
    (sbatch, stop_by_scancel, "CANCELLED"),
    (srun, stop_by_ctl, "COMPLETED"),
    (srun, stop_by_sigterm_to_srun, None),  # killed: no clean stop, whatever Slurm calls it
], ids=["srun-scancel", "sbatch-scancel", "srun-ctl-stop", "srun-sigterm"])
def test_slurm_runs_the_cluster_and_a_stop_leaves_nothing(slurm, slurm_env, launch, stop, job_end):
    topo = slurm_env.topology("demo.toml", rebalance_interval=0)
    names = load(topo).names
    started = time.monotonic()
    run = launch(slurm_env, topo, slurm_env.tmp / "live.toml")
    run.wait_published()
    published = time.monotonic() - started
    ranks = run.ranks()
    assert sorted(ranks) == list(range(RANKS)), run.publish.read_text()
    assert [info["nodes"] for _, info in sorted(ranks.items())] == [share(names, r, RANKS) for r in range(RANKS)]

    # The ranks are the tasks of one Slurm job, numbered as MPI numbered them.
    tasks = {rank: psutil.Process(info["pid"]).environ() for rank, info in ranks.items()}
    jobs = {environ.get("SLURM_JOB_ID") for environ in tasks.values()}
    assert len(jobs) == 1 and None not in jobs, jobs
    job = jobs.pop()
    assert all(environ.get("SLURM_PROCID") == str(rank) for rank, environ in tasks.items()), tasks
    assert slurm.job_state(job) == "RUNNING"

    snap = slurm_env.ctl_json("echo", "-t", run.publish)
    assert sorted(n["name"] for n in snap["nodes"]) == sorted(names) and not snap["missing"], snap
    res = slurm_env.ctl_json("finn", "--tasks", "1", "--cost", "0.1", "-t", run.publish)
    assert sorted(res["decided"]) == sorted(names) and res["undecided"] == [], res

    # Everything of the cluster, seen now: ranks, nodes, burners (they carry the test's home).
    ours = snapshot(slurm_env)
    pids = {pid for pid, _ in ours}
    assert {info["pid"] for info in ranks.values()} <= pids
    node_pids = {n["pid"] for rank in ranks for n in rank_record(slurm_env, rank)["nodes"].values()}
    assert len(node_pids) == len(names) and node_pids <= pids

    cancelled = time.monotonic()
    stop(slurm, slurm_env, run, job)
    stopped, last = wait_all_gone(slurm_env, run, ours, cancelled, stop.__name__)
    if launch is sbatch:
        run.stop()  # SIGTERM to the client, by pid: the job it waits for is over
    run.proc.wait(GONE_TIMEOUT)
    print(f"{launch.__name__}, {stop.__name__}: job {job} published {len(names)} nodes on {RANKS} ranks "
          f"{published:.1f} s after the launch; its {len(ours)} processes were gone {stopped:.1f} s after the stop, "
          f"the last {last}", file=sys.stderr)
    if job_end is None:
        return  # everything is gone, but SIGKILL left the records and the published file as they were
    # every process is gone; slurmctld may still hold the job COMPLETING (its epilog, the
    # step's end reported by slurmd) for a moment before it shows how the job ended
    assert wait_until(lambda: ended(slurm, job), GONE_TIMEOUT, f"job {job} to leave COMPLETING") == job_end
    assert not run.publish.exists(), "the published topology outlived the cluster"
    for rank in ranks:  # every rank stopped its nodes itself, and no node failed in its close
        record = rank_record(slurm_env, rank)
        assert record["state"] == "stopped", (rank, record)
        exits = {name: (n["state"], n["last_exit"]) for name, n in record["nodes"].items()}
        # SIGKILL is the supervisor's, after its 3 s of grace: on a machine loaded far
        # beyond its cores a node may close that slowly; a node that fails says so.
        assert all(e in (("STOPPED", "exit status 0"), ("STOPPED", "killed by SIGKILL")) for e in exits.values()), (
            rank, exits)
        tracebacks = [log.name for log in Path(record["run_dir"]).glob("*.log") if "Traceback" in log.read_text(errors="replace")]
        assert not tracebacks, (rank, tracebacks)


def test_a_killed_rank_ends_the_step_under_srun_k(slurm, slurm_env):
    """``srun -K``: a SIGKILLed rank takes its nodes with it (their death signal) and
    Slurm ends the step, so nothing of the cluster is left (README.md, "On a Slurm site")."""
    topo = slurm_env.topology("demo.toml", rebalance_interval=0)
    run = srun(slurm_env, topo, slurm_env.tmp / "live.toml")
    run.wait_published()
    ranks = run.ranks()
    slurm_env.ctl_json("echo", "-t", run.publish)
    ours = snapshot(slurm_env)
    assert len(ours) >= 1 + RANKS + 15  # srun, the ranks, the nodes (and the burners)
    killed = time.monotonic()
    os.kill(ranks[1]["pid"], signal.SIGKILL)
    took, last = wait_all_gone(slurm_env, run, ours, killed, "the kill")
    assert run.proc.returncode != 0
    print(f"a SIGKILLed rank under srun -K: all {len(ours)} processes gone in {took:.1f} s, the last {last}",
          file=sys.stderr)


def test_srun_without_pmi_is_refused_before_anything_starts(slurm, slurm_env):
    """``srun -n 3`` with this site's ``MpiDefault=none``: every task is rank 0 of 1. Each
    would run the whole cluster; daemon.mpi refuses, says why, and starts nothing. Every
    task says it (srun -K may end the others before they speak), at most once each."""
    topo = slurm_env.topology("demo.toml", rebalance_interval=0)
    publish = slurm_env.tmp / "live.toml"
    run = srun(slurm_env, topo, publish, "--mpi=none")
    try:
        run.proc.wait(GONE_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"srun --mpi=none still runs {GONE_TIMEOUT:.0f} s later:\n{run.output()}")
    out = run.output()
    assert run.proc.returncode != 0, out
    assert 1 <= out.count("daemon.mpi: error: srun started 3 tasks but MPI sees each as rank 0 of 1") <= RANKS, out
    assert "--mpi=pmi2" in out and "Traceback" not in out, out
    assert "exit code 2" in out, out  # srun: "tasks 0-2: Exited with exit code 2"
    assert not publish.exists() and not list(slurm_env.home.glob("*/cluster.json"))
