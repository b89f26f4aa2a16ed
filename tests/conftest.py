"""Suite-wide setup: the hypothesis profile (tests/budget.py), a count of the
hypothesis examples each run executes, printed in the run's summary, and the rule that
only tests marked ``e2e`` start processes.

The count wraps each property test's ``.hypothesis.inner_test`` (the hook hypothesis
documents for wrapping how each example runs): every call is one example, generated,
replayed from the database or shrunk. Under pytest-xdist (``make test`` runs the suite
on several workers) each worker counts its own examples and hands the number to the
controller at its end (``workeroutput``), which prints the sum.

Orphans: from the first e2e test on, the test process is the child subreaper of what its
tests start and reaps their orphans at once (tests/reaper.py): a stopped cluster's
supervisor is gone when it exits, not when init gets round to reaping it.

Processes: ``make test-fast`` runs ``-m "not e2e"`` and must start none, so a test that
starts a process (``subprocess``, ``os.fork``, ``os.posix_spawn``... seen through
Python's audit events, in the test, the fixtures it sets up and the teardown of its
function fixtures) without the ``e2e`` marker fails, naming the command. The teardown of
a module or session fixture after a worker's last test is not that test's.
"""

from __future__ import annotations

import functools
import sys

import pytest

import budget  # registers and loads the profile before any test module is imported
import reaper


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


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)  # set on an xdist worker only
    if workeroutput is not None:
        workeroutput["hypothesis_examples"] = budget.executed


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """On the xdist controller: a worker ended; add the examples it ran."""
    budget.count(getattr(node, "workeroutput", {}).get("hypothesis_examples", 0))


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(
        f"hypothesis profile {budget.PROFILE!r}: {budget.executed} examples run")


# -- only e2e tests start processes --------------------------------------------------

# Audit events (Python's "Audit events table") raised when this process starts another.
PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system"})
_started: list[str] | None = None  # while an unmarked test runs: what it started
_watching = False  # from the unmarked test's setup to the end of its function fixtures


def _audit(event: str, args: tuple) -> None:
    if _watching and event in PROCESS_EVENTS:
        what = args[1] if event == "subprocess.Popen" else args[0] if args else ""
        if isinstance(what, (list, tuple)):
            what = " ".join(map(str, what))
        _started.append(f"{event} {what}".strip()[:200])


sys.addaudithook(_audit)  # cannot be removed; it does nothing outside an unmarked test


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    global _started, _watching
    _started = None if item.get_closest_marker("e2e") else []
    _watching = _started is not None
    if not _watching:
        reaper.start()  # this process reaps the orphans its e2e tests leave (tests/reaper.py)
    reaper.active(not _watching)  # from an e2e test's setup to the next unmarked test's


@pytest.fixture(autouse=True)
def _process_watch_ends_here():
    """Set up before the test's other function fixtures, so torn down after them: the
    watch ends here, before module and session fixtures are torn down (a session's Slurm
    stopped after a worker's last test is no process of that test's)."""
    yield
    global _watching
    _watching = False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    global _started
    outcome = yield
    if call.when != "teardown" or _started is None:
        return
    started, _started = _started, None
    report = outcome.get_result()
    if started and report.passed:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} started {len(started)} process(es) without the e2e marker:\n  "
            + "\n  ".join(started[:5])
            + "\nmark it `pytest.mark.e2e` (setup.cfg): `make test-fast` runs the tests that start no process")
