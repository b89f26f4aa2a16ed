"""The suite's one wait helper: conditions are waited for with generous deadlines, never
slept for (the machine is shared; a check that depends on its speed is flaky), and a
wait that can no longer succeed — the process it waits on has exited — fails at once
instead of at its deadline.

Every tier imports it as ``polling`` (tests/ is on ``sys.path``: tests/conftest.py sits
there), as it does ``budget``."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

import pytest

WAIT = 60.0  # bound on waiting for a process or a state: generous, the machine is shared
EVERY = 0.05  # seconds between two looks

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = WAIT, what: str = "the condition", *,
               every: float = EVERY, unless: Callable[[], str | None] | None = None,
               detail: Callable[[], str] | None = None) -> T:
    """Poll ``predicate`` every ``every`` seconds until it returns something truthy, and
    return that. Fail naming ``what`` after ``timeout`` seconds, or at once when
    ``unless()`` returns a reason (say, "ctl top exited 1"), looked at after each false
    ``predicate``; ``detail()`` adds text to either failure (a screen, a log's tail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        why = unless() if unless is not None else None
        if why:
            value = predicate()  # what the condition waited for may have come just before the end
            if value:
                return value
            _fail(f"{why} while waiting for {what}", detail)
        if time.monotonic() > deadline:
            _fail(f"gave up after {timeout:.0f} s waiting for {what}", detail)
        time.sleep(every)


def _fail(message: str, detail: Callable[[], str] | None) -> None:
    if detail is not None:
        message += ":\n" + detail()
    pytest.fail(message)
