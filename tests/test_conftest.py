"""The suite's own rules (tests/conftest.py), checked on small inner pytest runs that use
the real conftest: a test that starts a process without the ``e2e`` marker fails,
naming the command; the hypothesis examples run on every xdist worker are counted, so
``make test`` prints the same total as a run on one process."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.e2e  # each test runs pytest in a process of its own

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def suite(pytester):
    """A pytest project holding this suite's conftest.py, budget.py and reaper.py, and its
    markers."""
    pytester.makeconftest((TESTS / "conftest.py").read_text())
    pytester.makepyfile(budget=(TESTS / "budget.py").read_text(), reaper=(TESTS / "reaper.py").read_text())
    pytester.makeini("[pytest]\nmarkers =\n    e2e: starts processes\n")
    return pytester


def test_an_unmarked_test_that_starts_a_process_fails_naming_it(suite):
    suite.makepyfile(test_inner="""
        import os, subprocess, sys
        import pytest

        def test_unmarked_popen():
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        def test_unmarked_fork():
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)

        @pytest.fixture
        def starts_at_teardown():
            yield
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        def test_unmarked_fixture_teardown(starts_at_teardown):
            pass

        @pytest.mark.e2e
        def test_marked():
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        @pytest.fixture(scope="session")
        def site():  # as tests/slurm's Slurm: stopped after the session's last test
            yield
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        @pytest.mark.e2e
        def test_marked_with_a_site(site):
            pass

        def test_in_process():  # the last: the session's teardown runs in its teardown phase
            assert sum(range(4)) == 6
    """)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=6, errors=3)  # the rule fails the teardown's report
    result.stdout.fnmatch_lines([
        "*test_unmarked_popen started 1 process(es) without the e2e marker:",
        "*subprocess.Popen * -c pass",
    ])
    result.stdout.fnmatch_lines(["*test_unmarked_fork started 1 process(es)*", "*os.fork*"])
    result.stdout.fnmatch_lines(["*test_unmarked_fixture_teardown started 1 process(es)*"])
    assert "test_marked started" not in result.stdout.str()


def test_examples_run_on_every_worker_are_counted(suite):
    suite.makepyfile(test_inner="""
        from hypothesis import given, settings, strategies as st

        from budget import examples

        @settings(max_examples=examples(30), database=None, derandomize=True)
        @given(st.integers())
        def test_one(x):
            pass

        @settings(max_examples=examples(20), database=None, derandomize=True)
        @given(st.text())
        def test_two(s):
            pass
    """)

    def counted(*args) -> int:
        result = suite.runpytest_subprocess("-p", "no:cacheprovider", *args)
        result.assert_outcomes(passed=2)
        found = re.findall(r"hypothesis profile '\w+': (\d+) examples run", result.stdout.str())
        assert len(found) == 1, result.stdout.str()
        return int(found[0])

    alone = counted()
    assert alone > 0
    assert counted("-n", "2") == alone  # each test on its own worker: both counts reach the total


def test_an_xdist_group_runs_on_one_worker(suite, tmp_path):
    """What the `mpi` group relies on (tests/mpi, tests/slurm): ``--dist loadgroup`` keeps a
    group's tests on one worker. (pytest 9.2 broke it in silence, setup.cfg.)"""
    ran = tmp_path / "ran"
    suite.makepyfile(test_inner=f"""
        import os
        import pytest

        def note(name):
            with open({str(ran)!r}, "a") as f:
                f.write(name + " " + os.environ["PYTEST_XDIST_WORKER"] + "\\n")

        @pytest.mark.xdist_group("together")
        @pytest.mark.parametrize("i", range(6))
        def test_grouped(i):
            note("grouped")

        @pytest.mark.parametrize("i", range(6))
        def test_free(i):
            note("free")
    """)
    suite.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup").assert_outcomes(passed=12)
    workers = [line.split() for line in ran.read_text().splitlines()]
    assert len({w for name, w in workers if name == "grouped"}) == 1, workers
