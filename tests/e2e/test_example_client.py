"""examples/client.py, the client written from PROTOCOL.md alone, against a real cluster
with CURVE: it pings every node, submits tasks, runs an echo and prints what it reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.topology import load

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "examples" / "client.py"


def test_the_example_client_is_short_and_imports_nothing_of_the_project():
    text = CLIENT.read_text()
    assert len(text.splitlines()) < 100
    imports = {line.split()[1].split(".")[0] for line in text.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"json", "os", "secrets", "sys", "time", "pathlib", "msgpack", "zmq"}, imports


def test_the_example_client_pings_submits_and_echoes_a_curve_cluster(cluster_env):
    topology = load(cluster_env.start(task_time=60.0))
    run_dir = cluster_env.home / topology.cluster.name
    assert (run_dir / "keys" / "operator.key_secret").exists()  # CURVE: the client must authenticate
    r = subprocess.run([sys.executable, str(CLIENT), str(run_dir), "--tasks", "4"], env=cluster_env.env,
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    first = topology.names[0]
    assert sum(line.startswith("pong from ") for line in lines) == len(topology.names), r.stdout
    assert f"submitted 4 tasks to {first}" in lines, r.stdout
    reached = [line for line in lines if line.startswith("echo ")]
    assert len(reached) == 1 and reached[0].endswith(f"reached {len(topology.names)} nodes:"), r.stdout
    listed = {line.split()[0] for line in lines[lines.index(reached[0]) + 1:]}
    assert listed == set(topology.names), r.stdout
