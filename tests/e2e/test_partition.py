"""Partitions across hosts: one seed cluster over three network namespaces joined by a
bridge (tests/mpi/netns.py, shared with the MPI tests), each namespace starting only the
nodes whose host is its own address (daemon/cluster/hosts.py ``local_nodes``), each with its
own ECHOFINN_HOME. One namespace is cut off (its link set down) during waves and
balancing: the echo names its nodes as missing, a balancing round still moves tasks
among the others, a move toward a cut-off node comes back to its donor (taken back after
its deadline; nothing lost); the link restored, the next echo is complete and the books
balance.

Safety (tests/mpi/netns.py): the blackhole route for the test subnet comes first; every
client (``ctl``, tests/e2e/partition_client.py) runs inside a namespace; only the
test's own addresses are targets; the clusters are stopped and checked gone by pid, and
the namespaces and the route deleted, on failure too (fixture finalizers). Root only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from polling import wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    """The module at ``path`` under ``name``, once per session: tests/mpi/netns.py (the
    MPI tests import it as ``netns``) and this directory's conftest.py (tests/mpi's
    mpi_launch.py loads it as ``e2e_cluster_env``; ``import conftest`` would find
    whichever conftest came first on sys.path)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


netns = _load("netns", ROOT / "tests" / "mpi" / "netns.py")
ClusterEnv = _load("e2e_cluster_env", ROOT / "tests" / "e2e" / "conftest.py").ClusterEnv

# seed.toml's out-tree root -> affixed -> {haywagon, tubularia -> {preindemnifying,
# subserviate -> pical}}, root -> outwhirled, over hosts 1-3; host 3 is cut off.
HOSTS = {1: ["root", "affixed", "outwhirled"], 2: ["haywagon", "tubularia"], 3: ["preindemnifying", "subserviate", "pical"]}
CUT = 3
TAKE_BACK_WAIT = 30.0  # generous: a move's deadline is 5 s, plus its grace
HEAL_WAIT = 60.0       # TCP's retransmission backoff after the link comes back


class NamespaceClusterEnv(ClusterEnv):
    """tests/e2e/conftest.py's ClusterEnv whose ``ctl`` runs inside host namespace ``i``
    (so its teardown stops that namespace's part of the cluster, and checks it by pid)."""

    def __init__(self, tmp_path, lab, i: int):
        (tmp_path / f"h{i}").mkdir()
        super().__init__(tmp_path / f"h{i}")
        self.lab, self.i = lab, i

    def ctl(self, *args, timeout: float = 60, cwd=ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
        """``python -m ctl ARGS`` inside this test's namespace (the base class's signature)."""
        command = self.lab.inside(self.i, [sys.executable, "-m", "ctl", *map(str, args)])
        result = subprocess.run(command, env={**self.env, **(env or {})}, cwd=cwd, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=timeout)
        self.processes()
        if args[:1] == ("start",) and len(args) > 1 and result.returncode == 0:
            self.started.add(str(args[1]))
        return result

    def run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run(self.lab.inside(self.i, [sys.executable, *command]), env=self.env, cwd=ROOT,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        self.processes()
        return result


@pytest.fixture
def lab():
    yield from netns.lab_fixture("three-namespace partition", f"p{os.getpid() % 1000}", 251)


@pytest.fixture
def hosts(lab, tmp_path):
    """One NamespaceClusterEnv per host namespace; stopped (and checked) before the lab
    is deleted, since this fixture depends on ``lab``."""
    envs = {i: NamespaceClusterEnv(tmp_path, lab, i) for i in HOSTS}
    yield envs
    problems = []
    for env in envs.values():
        problems += env.teardown()
    if problems:
        pytest.fail("teardown:\n  " + "\n  ".join(problems), pytrace=False)


def echo(env, topo) -> tuple[int, dict]:
    result = env.ctl("echo", "--json", "-t", topo)
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def start_on_every_host(lab, hosts, tmp_path, **cluster):
    """seed.toml over the three hosts, each node on its host's address, started in each
    namespace; returns (topology path, host -> address)."""
    address = {i: lab.hosts[i - 1][0] for i in HOSTS}
    # the topology: ports from hosts[1]'s reserved block, each node on its host's address
    topo = hosts[1].topology("seed.toml", rebalance_interval=0,
                             nodes={n: {"host": address[i]} for i, names in HOSTS.items() for n in names}, **cluster)
    # CURVE across hosts: the keys are made once and each host gets its own folder
    # (README.md, Security), copied into that namespace's run directory
    made = hosts[1].ctl("keygen", "-t", topo, "--out", tmp_path / "keys")
    assert made.returncode == 0, made.stderr
    for i, env in hosts.items():
        (env.home / "seed").mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copytree(tmp_path / "keys" / address[i] / "seed" / "keys", env.home / "seed" / "keys")
    for i, env in hosts.items():
        started = env.ctl("start", topo)
        assert started.returncode == 0, f"host {i}: {started.stderr}"
        status = env.ctl_json("status", "-t", topo)
        alive = sorted(n["name"] for n in status["nodes"] if n["alive"])
        assert alive == sorted(HOSTS[i]), f"host {i} runs {alive}, not only its own nodes {HOSTS[i]}"
    return topo, address


def test_a_cut_off_namespace_is_named_its_moves_come_back_and_the_healed_cluster_is_whole(lab, hosts, tmp_path):
    from daemon.core.tasks import account

    topo, address = start_on_every_host(lab, hosts, tmp_path)
    client = hosts[1]
    code, snap = echo(client, topo)
    assert code == 0 and snap["complete"], snap["missing"]

    submitted = client.ctl_json("submit", "tubularia", "--tasks", "40", "--cost", "60", "-t", topo)
    assert submitted["tasks"] == 40

    cut_nodes = HOSTS[CUT]
    _, ns, _ = lab.hosts[CUT - 1]
    netns.run("ip", "-n", ns, "link", "set", "eth0", "down")
    print(f"\ncut off host {CUT} ({address[CUT]}, namespace {ns}): nodes {cut_nodes}")

    # waves: the echo answers by its deadline and names the cut-off nodes. A live parent
    # of silent nodes waits for them up to its own deadline, a hop margin (daemon/core/node.py
    # hop_budget) before its father's, and may be named too when its answer comes later
    # than that on a loaded machine: the next echo is asked then.
    tries = []

    def named_exactly():
        code, snap = echo(client, topo)
        tries.append(snap["missing"])
        assert code == 1 and set(cut_nodes) <= set(snap["missing"]), snap["missing"]
        return sorted(snap["missing"]) == sorted(cut_nodes) and snap

    snap = wait_until(named_exactly, TAKE_BACK_WAIT, "an echo naming exactly the cut-off nodes")
    print(f"echo during the cut: exit 1, missing {snap['missing']}, reached {len(snap['nodes'])} "
          f"(echoes asked: {len(tries)}, their missing: {tries})")
    finn_run = client.ctl("finn", "--tasks", "1", "--cost", "0.1", "--json", "-t", topo)
    assert "Traceback" not in finn_run.stderr, finn_run.stderr
    finn = json.loads(finn_run.stdout)
    print(f"finn during the cut: undecided {finn['undecided']}, unreachable {finn['unreachable']}")
    assert set(cut_nodes) <= set(finn["undecided"]) and not set(finn["decided"]) & set(cut_nodes), finn

    # balancing over what the echo heard: moves only among the live hosts
    rounds = []

    def balancing_round():
        round_ = client.ctl("rebalance", "--json", "-t", topo)
        assert "Traceback" not in round_.stderr, round_.stderr
        rebalance = json.loads(round_.stdout)
        dests = {m["to"] for m in rebalance["moves"]}
        rounds.append((rebalance["moved"], sorted(dests)))
        assert not dests & set(cut_nodes), rebalance["moves"]
        return rebalance["moved"] > 0

    wait_until(balancing_round, TAKE_BACK_WAIT, "a balancing round that moves tasks among the live nodes")
    print(f"rebalance during the cut: (moved, to) per round {rounds}")

    # a move toward a cut-off node: the donor takes its tasks back after the deadline
    move = client.run("tests/e2e/partition_client.py", str(topo), "tubularia", "preindemnifying", "5")
    assert move.returncode == 0, move.stderr
    sent = json.loads(move.stdout)
    assert sent["count"] >= 1, sent  # what tubularia still had queued, up to 5

    def donor():
        _, now = echo(client, topo)
        found = [n for n in now["nodes"] if n["name"] == "tubularia"]
        if not found:
            print(f"echo missed tubularia: missing {now['missing']}")
        return found[0] if found else None

    leaving = wait_until(donor, TAKE_BACK_WAIT, "an echo that reaches tubularia")
    assert any(o[0] == sent["move_id"] for o in leaving["outgoing"]), leaving["outgoing"]
    back = wait_until(lambda: (d := donor()) and not any(o[0] == sent["move_id"] for o in d["outgoing"]) and d,
                    TAKE_BACK_WAIT, f"tubularia to take back move {sent['move_id']}")
    print(f"move {sent['move_id']} of {sent['count']} tasks to preindemnifying: taken back "
          f"(tubularia outgoing {back['outgoing']}, running {back['running']}, queued {back['queued']})")

    # healed: the next echo is complete, nothing lost, nothing run twice
    netns.run("ip", "-n", ns, "link", "set", "eth0", "up")
    healed = wait_until(lambda: (e := echo(client, topo))[0] == 0 and e[1], HEAL_WAIT, "a complete echo after the heal")
    books = account(healed["nodes"])
    print(f"after the heal: complete echo of {len(healed['nodes'])} nodes; books {books}")
    # balanced: every task submitted (40, and Finn's, late decisions after the heal
    # included) is done, running, queued or in flight, once
    assert books["balanced"] and books["submitted"] >= 40 + len(finn["decided"]), books
    assert not any(sent["move_id"] in n["unconfirmed"] for n in healed["nodes"]), "the taken-back move was accepted"


def test_a_host_stopped_or_cut_off_is_not_the_cluster_stopped_and_every_view_names_its_nodes(lab, hosts, tmp_path):
    """A host's run directory records its own nodes only: after `ctl stop` on host 3,
    neither host 3 nor host 1 calls the cluster stopped (ctl/common.py resolve_cluster);
    their waves run and name host 3's nodes, and `ctl top` counts the same nodes up; then
    host 2 is cut off too, and echo and top agree again. `ctl status` speaks for its own
    host: host 1's nodes are healthy, and host 3 says it runs nothing here."""
    topo, _ = start_on_every_host(lab, hosts, tmp_path)
    stopped = hosts[CUT].ctl("stop", "-t", topo)
    assert stopped.returncode == 0, stopped.stderr
    here = hosts[CUT].ctl("status", "-t", topo)
    assert here.returncode == 1 and "cluster seed is not running on this host (stopped)" in here.stderr, here.stderr

    def views_name(env, silent):
        """Echo, then top, from ``env``: both name exactly ``silent`` (a live parent of
        silent nodes may be named too on a loaded machine: look again then)."""
        code, snap = echo(env, topo)
        assert "is stopped" not in json.dumps(snap), snap
        top = env.ctl("top", "--once", "--ascii", "--width", "140", "-t", topo)
        assert top.returncode == 1 and "Traceback" not in top.stderr and "is stopped" not in top.stderr, top.stderr
        up = f"{8 - len(silent)}/8 nodes up"
        return code == 1 and sorted(snap["missing"]) == sorted(silent) and up in top.stdout

    for i in (CUT, 1):
        wait_until(lambda: views_name(hosts[i], HOSTS[CUT]), TAKE_BACK_WAIT,
                   f"echo and top from host {i} to name exactly host {CUT}'s nodes")
    _, ns, _ = lab.hosts[2 - 1]
    netns.run("ip", "-n", ns, "link", "set", "eth0", "down")
    try:
        wait_until(lambda: views_name(hosts[1], HOSTS[2] + HOSTS[CUT]), TAKE_BACK_WAIT,
                   "echo and top from host 1 to name exactly hosts 2 and 3's nodes")
        result = hosts[1].ctl("status", "-t", topo, "--json")
        status = json.loads(result.stdout)
        assert result.returncode == 0, status  # host 1's own nodes all run and answer
        assert sorted(n["name"] for n in status["nodes"] if n["ping_ms"] is not None) == sorted(HOSTS[1]), status
        assert status["remote_nodes"] == [n for n in load_names(topo) if n not in HOSTS[1]], status
    finally:
        netns.run("ip", "-n", ns, "link", "set", "eth0", "up")


def load_names(topo) -> list[str]:
    from daemon.topology import load

    return load(topo).names
