"""Several nodes in one process, the pieces without a cluster: how the supervisor groups
its nodes and reads a group's ready line (daemon/supervisor.py), and what
``python -m daemon`` refuses before it binds anything (daemon/node.py). The whole of it
on real processes is tests/e2e/test_nodes_per_process.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.supervisor import RUNNING, NodeProcess, Supervisor
from daemon.topology import loads

ROOT = Path(__file__).resolve().parents[2]


def topology(n: int, per_process: int):
    nodes = "".join(f'[[node]]\nname = "n{i}"\ncpus = 1\nparents = [{f"{chr(34)}n{(i - 1) // 2}{chr(34)}" if i else ""}]\n'
                    for i in range(n))
    return loads(f'[cluster]\nname = "g"\nnodes_per_process = {per_process}\n{nodes}', path="/nonexistent/g.toml")


@pytest.mark.parametrize("n, k, sizes", [(1, 1, [1]), (7, 1, [1] * 7), (7, 3, [3, 3, 1]), (8, 4, [4, 4]), (5, 9, [5])])
def test_nodes_are_grouped_in_file_order(tmp_path, n, k, sizes):
    t = topology(n, k)
    groups = Supervisor(t, tmp_path / "run").groups(list(t.names))
    assert [len(g) for g in groups] == sizes
    assert [name for g in groups for name in g] == list(t.names)  # each once, in file order


def group_unit(tmp_path) -> NodeProcess:
    """Three nodes in one process, bound (the topology says) at ports 11, 12, 13."""
    return NodeProcess({f"n{k}": f"tcp://127.0.0.1:{11 + k}" for k in range(3)}, tmp_path / "n0.log")


def test_a_group_is_ready_with_one_endpoint_per_node(tmp_path):
    unit = group_unit(tmp_path)
    assert [unit.record(name)["endpoint"] for name in ("n0", "n1", "n2")] == [f"tcp://127.0.0.1:{p}" for p in (11, 12, 13)]
    unit.pid = 4242
    lines = unit.heard("ready 4242 tcp://127.0.0.1:1 tcp://127.0.0.1:2 tcp://127.0.0.1:3")
    assert lines.split("\n") == ["ready n0 4242 tcp://127.0.0.1:1", "ready n1 4242 tcp://127.0.0.1:2",
                                 "ready n2 4242 tcp://127.0.0.1:3"]
    assert unit.state == RUNNING and unit.error is None
    assert [unit.record(name)["endpoint"] for name in ("n0", "n1", "n2")] == [f"tcp://127.0.0.1:{p}" for p in (1, 2, 3)]
    assert all(unit.record(name)["pid"] == 4242 for name in ("n0", "n1", "n2"))


@pytest.mark.parametrize("line", ["ready 4242 tcp://127.0.0.1:1 tcp://127.0.0.1:2",  # one short
                                  "ready 4242 tcp://127.0.0.1:1 tcp://127.0.0.1:2 tcp://127.0.0.1:3 tcp://x:4",
                                  "ready 4243 tcp://127.0.0.1:1 tcp://127.0.0.1:2 tcp://127.0.0.1:3",  # not its pid
                                  "ready 4242 tcp://127.0.0.1:1  tcp://127.0.0.1:3"])  # an empty endpoint
def test_a_group_ready_line_that_does_not_fit_fails_naming_it(tmp_path, line):
    unit = group_unit(tmp_path)
    unit.pid = 4242
    said = unit.heard(line)
    assert said.startswith("error node n0: bad ready line") and repr(line) in said, said
    assert unit.state != RUNNING


def daemon(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daemon", "--topology", str(ROOT / "topologies" / "seed.toml"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.e2e  # starts a process (tests/conftest.py)
@pytest.mark.parametrize("args, said", [
    (("--node", "root", "--node", "root"), "error nodes named twice: root root"),
    (("--node", "root", "--node", "pical", "--journal", "/tmp/x.sqlite"), "error --journal names the journal of a single node"),
    (("--node", "root", "--node", "nosuch"), "nosuch"),
])
def test_python_m_daemon_refuses_a_bad_group_before_binding(args, said):
    r = daemon(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.startswith("error ") and said in r.stdout, r.stdout
