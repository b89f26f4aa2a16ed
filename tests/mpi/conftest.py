"""Fixtures of the MPI launcher's tests (the helpers live in mpi_launch.py):

- ``mpi_env``: tests/e2e's ``cluster_env`` plus ``launch(ranks, topology, *args)``; skips
  with the reason when the ``[mpi]`` extra is not installed.
- ``shm_before``: the names in /dev/shm before the test.
"""

from __future__ import annotations

import pytest

from mpi_launch import MpiEnv, mpi_missing, shm_files


@pytest.fixture
def mpi_env(tmp_path):
    missing = mpi_missing()
    if missing:
        pytest.skip(missing)
    env = MpiEnv(tmp_path)
    yield env
    problems = env.teardown()
    if problems:
        pytest.fail("MPI teardown:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def shm_before():
    """The /dev/shm names present before the test (other users' included)."""
    return shm_files()

