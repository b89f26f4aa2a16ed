"""Suite-wide setup: the hypothesis profile (tests/budget.py) and a count of the
hypothesis examples each run executes, printed in the run's summary.

The count wraps each property test's ``.hypothesis.inner_test`` (the hook hypothesis
documents for wrapping how each example runs): every call is one example, generated,
replayed from the database or shrunk.
"""

from __future__ import annotations

import functools

import budget  # registers and loads the profile before any test module is imported


def pytest_collection_modifyitems(items):
    for item in items:
        handle = getattr(getattr(item, "obj", None), "hypothesis", None)
        if handle is None or getattr(handle.inner_test, "counted", False):
            continue
        inner = handle.inner_test

        @functools.wraps(inner)
        def counted(*args, inner=inner, **kwargs):
            budget.count()
            return inner(*args, **kwargs)

        counted.counted = True
        handle.inner_test = counted


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(
        f"hypothesis profile {budget.PROFILE!r}: {budget.executed} examples run")
