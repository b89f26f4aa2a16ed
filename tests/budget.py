"""Hypothesis profiles for the whole suite, and the example budget of each test.

The profile is chosen by the ``ECHOFINN_HYPOTHESIS`` environment variable:

- ``ci`` (the default, what ``make test`` runs): randomized — every run draws new
  examples — and a failure prints its ``@reproduce_failure`` blob, so the exact
  falsifying example can be replayed;
- ``long``: the same with 10× the examples of every test (``make test-long``);
- ``mutation``: a quarter of ``ci``'s budgets (at least one example), derandomized and
  without the example database, so that two mutation runs over the same code draw the
  same examples and their scores compare (``make mutation``: some 3,000 mutants, each
  running the tests that reach its function).

A test states its budget as ``@settings(max_examples=examples(150))``: an explicit
``max_examples`` would otherwise override the profile's. tests/conftest.py loads the
profile and counts the examples a run executes (printed at the end of the run).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILES = {"ci": 1, "long": 10, "mutation": 0.25}  # profile -> examples multiplier
PROFILE = os.environ.get("ECHOFINN_HYPOTHESIS", "ci")
if PROFILE not in PROFILES:
    raise SystemExit(f"ECHOFINN_HYPOTHESIS={PROFILE!r}: expected one of {', '.join(PROFILES)}")
FACTOR = PROFILES[PROFILE]

_common = dict(
    deadline=None,  # the machine is shared: a slow example is not a failure
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", max_examples=100, derandomize=False, **_common)
settings.register_profile("long", max_examples=1000, derandomize=False, **_common)
settings.register_profile("mutation", max_examples=25, derandomize=True, database=None, **_common)
settings.load_profile(PROFILE)


def examples(n: int, reach: bool = False) -> int:
    """A test's example budget under the current profile (``n`` under ``ci``). ``reach``:
    the test asserts that its examples reached rare cases, which a quarter of them may
    miss: the mutation profile does not cut its budget."""
    if reach and PROFILE == "mutation":
        return n
    return max(1, round(n * FACTOR))


executed = 0  # examples run so far in this process (tests/conftest.py counts them)


def count(n: int = 1) -> None:
    global executed
    executed += n
