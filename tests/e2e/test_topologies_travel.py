"""The shipped topologies travel with the package: ``ctl start seed`` and ``ctl demo``
from a folder that is not the repository, the shipped files inside a built wheel, and
``ctl start``'s words for a port that a node of another of your clusters holds.

``ctl start seed`` and ``ctl demo`` use the shipped files as they are, on their own
ports (seed 7100-7107 and 8100-8107, demo 7200-7214 and 8200-8214): when another
program holds one, the test is skipped, naming the port; the two tests share an xdist
group so that they never run side by side."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

from pathlib import Path

import pytest

from ctl.shipped import folder, shipped_names

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def ports_free_or_skip(name: str) -> None:
    from daemon.topology import load

    topology = load(folder() / f"{name}.toml")
    for node in topology.names:
        for port in (topology.node(node).port, topology.operator_port(node)):
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    pytest.skip(f"port {port} of the shipped topology {name} is taken by another program")


@pytest.mark.xdist_group("shipped-ports")
def test_start_status_stop_a_shipped_topology_by_name_from_any_folder(cluster_env, tmp_path):
    ports_free_or_skip("seed")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    started = cluster_env.ctl("start", "seed", cwd=elsewhere)
    assert started.returncode == 0, started.stdout + started.stderr
    assert "cluster seed is running" in started.stdout
    status = cluster_env.ctl("status", cwd=elsewhere)  # bare: the one cluster running
    assert status.returncode == 0 and "8/8 nodes alive" in status.stdout, status.stdout + status.stderr
    record = cluster_env.record("seed")
    assert Path(record["topology"]) == folder() / "seed.toml"
    stopped = cluster_env.ctl("stop", "-t", "seed", cwd=elsewhere)
    assert stopped.returncode == 0 and "stopped cluster seed" in stopped.stdout, stopped.stdout + stopped.stderr
    assert not cluster_env.processes()


@pytest.mark.xdist_group("shipped-ports")
def test_demo_runs_from_any_folder(cluster_env, tmp_path):
    ports_free_or_skip("demo")
    r = cluster_env.ctl("demo", "--no-top", "--burst", "6", cwd=tmp_path, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "$ ctl start " in r.stdout and "$ ctl stop " in r.stdout and "stopped cluster demo" in r.stdout
    assert not cluster_env.processes()


def test_a_name_that_is_neither_a_file_nor_shipped_lists_the_shipped_ones(cluster_env, tmp_path):
    r = cluster_env.ctl("start", "sead", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "sead: no such topology file or shipped topology" in r.stderr  # nor nodes of a running cluster
    assert all(name in r.stderr for name in shipped_names())


def test_the_built_package_holds_every_shipped_topology(tmp_path):
    """The package as setuptools builds it for a wheel (``build_py``, the step of
    ``bdist_wheel`` that gathers the packages and their data), from the source tree
    copied with the symbolic link ctl/topologies kept as one, holds the topologies as
    package data."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("ctl", "daemon", "topologies"):
        shutil.copytree(ROOT / name, source / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    assert (source / "ctl" / "topologies").is_symlink()
    out = tmp_path / "lib"
    built = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "--quiet", "build_py",
                            "--build-lib", str(out)], cwd=source, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    names = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert not (out / "ctl" / "topologies").is_symlink()  # real files, as a wheel holds them
    expected = {f"ctl/topologies/{name}.toml" for name in shipped_names()}
    assert expected <= names, sorted(expected - names)
    assert "ctl/shipped.py" in names and "daemon/words.txt" in names
