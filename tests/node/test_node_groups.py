"""Several nodes in one process: what ``python -m daemon`` refuses before it binds
anything (daemon/node.py). How the supervisor groups its nodes and reads a group's ready
line is tests/cluster/test_supervisor.py and tests/cluster/test_process.py; the whole of
it on real processes is tests/e2e/test_nodes_per_process.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]


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
