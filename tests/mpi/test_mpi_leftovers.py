"""An MPI launch over what earlier launches left on the same machine (daemon/mpi.py, "Run
directories"): an earlier ``ctl start`` of the same cluster, a ``ctl start`` whose
supervisor was SIGKILLed, an earlier MPI launch with another number of ranks, one whose
rank 0 was SIGKILLed, the keys of another cluster copied into the run directory. Each is followed by a launch of three ranks
that must reach every node: every rank writes the launch's keys, so none keeps old ones
(which made each CURVE handshake between ranks fail in silence: an echo reached one node
of a rank's share and said only "no answer from ...")."""

from __future__ import annotations

import os
import signal

import pytest

from daemon import security
import polling

# MPI launches: one at a time with tests/mpi/test_mpi_cluster.py's, whose /dev/shm checks
# would see their shared memory (the xdist group of `make test`)
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("mpi")]

RANKS = 3


def launch_ready(mpi_env, topo, ranks: int = RANKS):
    """Launch ``ranks`` ranks and wait for rank 0's ready line (then the published file
    is this launch's, whatever an earlier one left there)."""
    run = mpi_env.launch(ranks, topo)
    polling.wait_until(lambda: " ready " in run.output() or run.proc.poll() is not None, polling.WAIT,
                       f"the ready line of mpiexec -n {ranks}")
    run.wait_published()
    return run


def launch_reaches_every_node(mpi_env, topo, ranks: int = RANKS) -> None:
    """Launch ``ranks`` ranks, echo from rank 0's side through the published file (every
    node must answer), stop with ``ctl stop -t FILE``, and see everything gone."""
    run = launch_ready(mpi_env, topo, ranks)
    try:
        mpi_env.echo_reaches_every_node(topo, via=run.publish)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{run.output()}") from None
    mpi_env.ctl_json("stop", "-t", run.publish)
    run.wait_gone()
    assert run.proc.returncode == 0, run.output()


def test_a_launch_after_ctl_start_and_stop_of_the_same_cluster(mpi_env):
    topo = mpi_env.start("demo.toml")
    assert mpi_env.ctl("stop", "-t", topo).returncode == 0
    launch_reaches_every_node(mpi_env, topo)


def test_a_launch_after_a_ctl_start_whose_supervisor_was_killed(mpi_env):
    topo = mpi_env.start("demo.toml")
    record = mpi_env.record("demo")
    os.kill(record["supervisor"]["pid"], signal.SIGKILL)
    for node in record["nodes"].values():  # they die with it (PR_SET_PDEATHSIG)
        polling.wait_until(lambda: mpi_env.gone(node["pid"], node["create_time"]), polling.WAIT, f"node pid {node['pid']} gone")
    launch_reaches_every_node(mpi_env, topo)


def test_a_launch_after_a_launch_with_another_number_of_ranks(mpi_env):
    topo = mpi_env.topology("demo.toml", rebalance_interval=0)
    launch_reaches_every_node(mpi_env, topo, ranks=RANKS)
    launch_reaches_every_node(mpi_env, topo, ranks=2)


def test_a_launch_after_a_launch_whose_rank_0_was_killed(mpi_env):
    """A SIGKILLed rank 0 leaves its published file, pid files and keys; the next launch,
    with other ranks, starts afresh (the stale file is gone before the start ends)."""
    topo = mpi_env.topology("demo.toml", rebalance_interval=0)
    run = launch_ready(mpi_env, topo)
    os.kill(run.ranks()[0]["pid"], signal.SIGKILL)
    run.wait_gone()
    assert run.publish.exists()  # the leftover
    launch_reaches_every_node(mpi_env, topo, ranks=2)


def test_ctl_start_after_a_launch(mpi_env):
    """The other way round: rank 0's folder holds the launch's keyring, every public key
    and the secret keys of rank 0's nodes only; ``ctl start`` checks them and makes the
    pairs it lacks, and every node answers."""
    topo = mpi_env.topology("demo.toml", rebalance_interval=0)
    launch_reaches_every_node(mpi_env, topo)
    started = mpi_env.ctl("start", topo)
    assert started.returncode == 0, started.stderr
    mpi_env.echo_reaches_every_node(topo)


def test_a_launch_refuses_the_run_directory_of_a_running_cluster_and_leaves_it_alone(mpi_env):
    """Not a leftover: the cluster runs (``ctl start``). Rank 0 refuses its run directory
    before writing anything there, so the running cluster keeps its keys and answers."""
    topo = mpi_env.start("demo.toml")
    run_dir = mpi_env.home / "demo"
    keys, record = security.read_files(run_dir), mpi_env.record("demo")
    run = mpi_env.launch(RANKS, topo)
    run.wait_gone()
    out = run.output()
    assert run.proc.returncode != 0 and not run.publish.exists(), out
    assert (f"{run_dir} is in use by a running supervisor (pid {record['supervisor']['pid']}); "
            f"stop it first (`ctl stop -t {topo}`)") in out, out
    assert security.read_files(run_dir) == keys and not (run_dir / "topology.toml").exists()
    mpi_env.echo_reaches_every_node(topo)


def test_a_launch_over_the_keys_of_another_cluster(mpi_env):
    topo = mpi_env.topology("demo.toml", rebalance_interval=0)
    mpi_env.copy_in_keys_of_another_cluster(topo)
    launch_reaches_every_node(mpi_env, topo)
