"""daemon/mpi.py's pure parts (the split, the address, the resolved topology, the lone
rank under srun) and its errors under a real mpiexec: one message per problem, exit 2,
no traceback."""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from daemon.errors import BadInput, UserError
from daemon.mpi import (ADVERTISE_ENV, check_addresses, choose_address, default_route_interface,
                        guess_address, lone_rank_error, remove_stale_publish, resolve, resolved_by,
                        share)
from daemon.topology import dumps, load, loads

ROUTES = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
"""


def addr(address: str, family=socket.AF_INET):
    return SimpleNamespace(family=family, address=address)


def up(isup=True):
    return SimpleNamespace(isup=isup)


@pytest.mark.parametrize("n,k", [(15, 3), (15, 16 - 1), (7, 2), (1, 1), (100, 16)])
def test_share_is_contiguous_balanced_and_covers_every_node(n, k):
    names = [f"n{i}" for i in range(n)]
    parts = [share(names, r, k) for r in range(k)]
    assert sum(parts, []) == names
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_default_route_interface():
    assert default_route_interface(ROUTES) == "eth0"
    assert default_route_interface(ROUTES.replace("eth0\t00000000", "eth0\t0000000A")) is None
    assert default_route_interface("") is None


def test_guess_prefers_the_default_route_then_the_first_up_interface():
    addrs = {"lo": [addr("127.0.0.1")], "eth0": [addr("fe80::1", socket.AF_INET6), addr("10.1.2.3")],
             "eth1": [addr("192.168.7.9")]}
    stats = {"lo": up(), "eth0": up(), "eth1": up()}
    assert guess_address(ROUTES, addrs, stats) == "10.1.2.3"
    assert guess_address("", addrs, stats) == "10.1.2.3"  # no default route: name order
    assert guess_address("", addrs, {**stats, "eth0": up(False)}) == "192.168.7.9"
    assert guess_address("", {"lo": [addr("127.0.0.1")]}, {"lo": up()}) is None


def test_address_order_option_then_environment_then_one_machine():
    env = {ADVERTISE_ENV: "10.0.0.2"}
    assert choose_address("10.0.0.1", env, True) == ("10.0.0.1", "--advertise")
    assert choose_address(None, env, True) == ("10.0.0.2", ADVERTISE_ENV)
    assert choose_address(None, {}, True) == ("127.0.0.1", "every rank on this machine")
    with pytest.raises(BadInput, match="--advertise: 'node7' is not an IPv4 address"):
        choose_address("node7", {}, False)
    with pytest.raises(BadInput, match=f"{ADVERTISE_ENV}: ::1 is an IPv6 address"):
        choose_address(None, {ADVERTISE_ENV: "::1"}, False)


@pytest.mark.parametrize("size, env, refused", [
    (1, {"SLURM_STEP_NUM_TASKS": "3"}, True),  # srun -n 3 without --mpi=pmi2: three worlds of one
    (3, {"SLURM_STEP_NUM_TASKS": "3"}, False),  # srun --mpi=pmi2 -n 3
    (1, {"SLURM_STEP_NUM_TASKS": "1"}, False),  # srun -n 1
    (1, {"SLURM_NTASKS": "3"}, False),  # a batch script's own shell: one rank, as anywhere
    (1, {}, False),  # no launcher, or mpiexec -n 1
    (1, {"SLURM_STEP_NUM_TASKS": "three"}, False),  # not Slurm's: nothing to say
])
def test_a_lone_rank_of_several_srun_tasks_is_refused(size, env, refused):
    said = lone_rank_error(size, env)
    assert (said is not None) == refused, said
    if refused:
        assert "srun started 3 tasks" in said and "--mpi=pmi2" in said


def test_resolve_replaces_every_endpoint():
    topology = load("topologies/demo.toml")
    endpoints = {name: (f"10.9.0.{1 + i % 3}", 40000 + i, 50000 + 7 * i) for i, name in enumerate(topology.names)}
    resolved = resolve(topology, endpoints)
    assert [resolved.endpoint(n) for n in topology.names] == [f"tcp://{h}:{p}" for h, p, _ in endpoints.values()]
    assert [resolved.operator_endpoint(n) for n in topology.names] == [f"tcp://{h}:{o}" for h, _, o in endpoints.values()]
    assert loads(dumps(resolved)) == resolved  # the published file keeps every operator port
    assert [resolved.parents(n) for n in topology.names] == [topology.parents(n) for n in topology.names]


def test_a_stale_published_file_is_removed_and_anything_else_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ECHOFINN_HOME", str(tmp_path / "home"))
    topology = load("topologies/demo.toml")
    published = tmp_path / "live.toml"
    published.write_text(dumps(topology, f"{resolved_by('demo')[2:]}/x/demo.toml, 3 ranks"))
    monkeypatch.setattr("daemon.mpi.rundir.is_running", lambda name: name == "demo")
    with pytest.raises(UserError, match=rf"--publish {published}: it is the published topology of cluster demo, which is running"):
        remove_stale_publish(published)
    monkeypatch.undo()
    monkeypatch.setenv("ECHOFINN_HOME", str(tmp_path / "home"))
    remove_stale_publish(published)  # demo is not running: its endpoints are gone
    assert not published.exists()
    for text in (Path("topologies/demo.toml").read_text(), "not a topology\n"):  # a file the user wrote
        published.write_text(text)
        with pytest.raises(BadInput, match=rf"--publish {published}: the file exists and is not a topology published by daemon.mpi"):
            remove_stale_publish(published)
        assert published.read_text() == text


def test_loopback_refused_across_machines():
    one = [{"rank": r, "host": "a", "machine": "a 1", "address": "127.0.0.1", "source": "s"} for r in range(2)]
    assert check_addresses(one) == []
    two = [one[0], {**one[1], "host": "b", "machine": "b 2", "address": "10.0.0.2"}]
    [error] = check_addresses(two)
    assert error.startswith("rank 0 on a advertises 127.0.0.1") and "--advertise" in error


@pytest.mark.e2e
@pytest.mark.xdist_group("mpi")  # with tests/mpi/test_mpi_cluster.py's launches, one at a time
def test_errors_under_mpiexec_name_the_problem_once(mpi_env, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[cluster]\nname = "x"\n[[node]]\nname = "a"\ncpus = 0\n')
    run = mpi_env.launch(2, bad)
    run.wait_gone()
    out = run.output()
    assert run.proc.returncode == 2, out
    assert out.count("bad.toml") == 1 and "cpus" in out and "Traceback" not in out, out

    topo = mpi_env.topology("seed.toml")
    run = mpi_env.launch(2, topo, "--advertise", "192.0.2.1")  # TEST-NET-1: never this machine's
    run.wait_gone()
    out = run.output()
    assert run.proc.returncode == 1, out
    assert "cannot bind a port on 192.0.2.1" in out and "Traceback" not in out, out
    assert out.count("rank 0 on") == 1 and out.count("rank 1 on") == 1, out

    run = mpi_env.launch(2, topo, "--publish", str(tmp_path / "missing" / "live.toml"))  # the last one counts
    run.wait_gone()
    out = run.output()
    assert run.proc.returncode == 2 and "the folder" in out and "missing does not exist" in out, out

    run = mpi_env.launch(9, topo)  # seed.toml has 8 nodes
    run.wait_gone()
    assert run.proc.returncode == 2 and "9 ranks for 8 nodes" in run.output(), run.output()
