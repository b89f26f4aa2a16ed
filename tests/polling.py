"""Polling for the end-to-end tests: conditions are waited for with generous deadlines,
never slept for (the machine is shared; a check that depends on its speed is flaky)."""

from __future__ import annotations

import time

import pytest

WAIT = 60.0  # bound on waiting for a process or a state: generous, the machine is shared


def wait_until(predicate, timeout: float, what: str):
    """Poll ``predicate`` until it returns something truthy (and return that); fail
    naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
