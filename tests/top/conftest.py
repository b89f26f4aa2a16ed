"""Fixtures for the tests of ``ctl top``: the shipped seed topology as a roster, and the
real-cluster fixture of ``tests/e2e``. Frame helpers live in ``top_frames``."""

from __future__ import annotations

import importlib.util

import pytest

from top_frames import ROOT, roster


def _e2e_fixtures():
    """tests/e2e/conftest.py, loaded by path (tests/ is not a package), for cluster_env."""
    spec = importlib.util.spec_from_file_location("top_e2e_clusters", ROOT / "tests" / "e2e" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cluster_env = _e2e_fixtures().cluster_env


@pytest.fixture
def seed_roster():
    return roster("seed.toml")
