"""Host locality (daemon/cluster/hosts.py), and that ``ctl start``, ``ctl status`` and
``ctl stop`` can ask it without importing the supervisor, the zygote, the node daemon or
ZeroMQ: checked in a fresh interpreter, where nothing else has imported them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from daemon import rundir
from daemon.cluster.hosts import is_local_host, local_addresses, local_nodes
from daemon.topology import loads

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.4.5", "::1", "0.0.0.0", "localhost", socket.gethostname()])
def test_loopback_unspecified_and_this_hosts_names_are_local(host):
    assert is_local_host(host)


def test_another_host_is_not_local_and_is_not_looked_up():
    assert not is_local_host("192.0.2.7", local={"localhost"})  # TEST-NET-1: never this machine
    assert not is_local_host("no-such-host.invalid", local={"localhost"})


def test_local_nodes_keeps_file_order_and_leaves_other_hosts_out():
    t = loads('[cluster]\nname = "h"\n'
              '[[node]]\nname = "b"\ncpus = 1\nhost = "127.0.0.1"\n'
              '[[node]]\nname = "far"\ncpus = 1\nhost = "192.0.2.7"\nparents = ["b"]\n'
              '[[node]]\nname = "a"\ncpus = 1\nhost = "localhost"\nparents = ["b"]\n', path="/nonexistent/h.toml")
    assert "192.0.2.7" not in local_addresses()
    assert local_nodes(t) == ["b", "a"]


@pytest.mark.e2e  # starts an interpreter (tests/conftest.py)
def test_ctl_learns_the_local_nodes_without_importing_the_supervisor_or_zmq(tmp_path):
    """``ctl status``'s and ``ctl stop``'s own paths to the local nodes, on a cluster never
    started (an empty ECHOFINN_HOME): the proof it is down, and its processes by port."""
    code = ("import sys\n"
            "from ctl.commands.status import unrecorded\n"
            "from ctl.common import cluster_down\n"
            "from daemon.topology import load\n"
            f"t = load({str(ROOT / 'topologies' / 'seed.toml')!r})\n"
            "assert cluster_down(t).kind == 'never-started' and unrecorded(t) == []\n"
            "assert 'daemon.cluster.hosts' in sys.modules\n"
            "heavy = ('zmq', 'daemon.zygote', 'daemon.node', 'daemon.cluster.supervisor', 'daemon.supervisor')\n"
            "print(' '.join(m for m in heavy if m in sys.modules))\n")
    env = {**os.environ, rundir.HOME_ENV: str(tmp_path / "home")}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"imported: {r.stdout.strip()}"
