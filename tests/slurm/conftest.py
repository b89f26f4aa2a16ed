"""Fixtures of the Slurm launch's tests (the site itself is tests/slurm/slurm_site.py):

- ``slurm``: a one-host Slurm of this session's own (munged, slurmctld, slurmd), started
  once, stopped and its folder removed at the end, on failure too. Skips naming the
  missing program when Slurm or munge is not installed, or when not root; fails when a
  Slurm or munge daemon runs already (it is not ours to touch).
- ``slurm_env``: tests/mpi's ``mpi_env`` (tests/e2e's ``cluster_env``: private
  ECHOFINN_HOME, locked ports, nothing left behind, checked by pid) whose commands talk
  to that Slurm; ``run_launcher(command, publish)`` runs a launcher (srun, ``sbatch --wait``).
  Its teardown cancels every job first, then checks that no process carrying its
  ECHOFINN_HOME is left, and no MPI shared memory that was not there before.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import slurm_site

ROOT = Path(__file__).resolve().parents[2]

# tests/mpi/mpi_launch.py's MpiEnv, loaded by path (tests/mpi is not on sys.path when
# only tests/slurm is collected).
_spec = importlib.util.spec_from_file_location("mpi_launch", ROOT / "tests" / "mpi" / "mpi_launch.py")
mpi_launch = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mpi_launch)


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    why = slurm_site.missing() or mpi_launch.mpi_missing()
    if why:
        pytest.skip(f"Slurm launch: {why}")
    foreign = slurm_site.foreign_daemons()
    if foreign:
        pytest.fail(f"Slurm or munge runs already ({', '.join(foreign)}): these tests start their own and "
                    f"never touch another's; stop it, or run them on another machine", pytrace=False)
    ports = mpi_launch.ClusterEnv(tmp_path_factory.mktemp("slurm-ports"))  # holds a locked port block
    base = ports._reserve_ports(2)
    site = slurm_site.SlurmSite((base, base + 1))
    try:
        site.open()
        yield site
    finally:
        problems = site.close() + ports.teardown()
    assert not problems, "Slurm teardown:\n" + "\n".join(problems)


@pytest.fixture
def slurm_env(slurm, tmp_path):
    env = mpi_launch.MpiEnv(tmp_path)
    env.env = slurm.env(env.env)
    shm_before = mpi_launch.shm_files()
    yield env
    problems = slurm.cancel_all() + env.teardown()
    problems += [f"MPI shared memory left: /dev/shm/{f}" for f in sorted(mpi_launch.shm_files() - shm_before)
                 if f.startswith("mpich")]
    if problems:
        pytest.fail("Slurm test teardown:\n  " + "\n  ".join(problems), pytrace=False)
