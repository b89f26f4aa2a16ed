"""tests/reaper.py: the test process adopts the orphans of what its e2e tests start and
reaps them as they exit, and leaves the children it starts itself to their starters."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import polling
import psutil
import pytest
import reaper

pytestmark = pytest.mark.e2e  # each test starts processes

ORPHAN = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1)'], "
          "start_new_session=True); print(p.pid)")  # as `ctl start` leaves its supervisor


def _exited(process: psutil.Process) -> bool:
    """A zombie, or gone already (the reaper may reap it between two looks)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE or not process.is_running()
    except psutil.NoSuchProcess:
        return True


def test_an_orphan_is_adopted_and_reaped_as_it_exits():
    assert reaper.start()
    parent = subprocess.run([sys.executable, "-c", ORPHAN], capture_output=True, text=True, check=True)
    orphan = psutil.Process(int(parent.stdout))
    assert orphan.ppid() == os.getpid()  # adopted here, not by init
    polling.wait_until(lambda: _exited(orphan), 30, "the orphan to exit", every=0.005)
    exited = time.monotonic()
    polling.wait_until(lambda: not orphan.is_running(), 30, "the orphan's zombie to be reaped", every=0.005)
    assert time.monotonic() - exited < 0.5  # init took 1.6 s here


def test_the_children_it_starts_itself_are_left_to_their_starters():
    assert reaper.start()
    assert [subprocess.run([sys.executable, "-c", f"raise SystemExit({k})"]).returncode for k in (0, 3)] == [0, 3]
    leader = subprocess.Popen([sys.executable, "-c", "raise SystemExit(5)"], start_new_session=True)
    pid = os.fork()
    if pid == 0:
        os._exit(9)
    time.sleep(0.5)  # both exited: zombies the reaper looks at and must leave
    assert leader.wait(timeout=30) == 5
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 9


def test_no_orphan_is_adopted_while_the_reaper_does_not_look():
    """Off (between e2e tests, or for tests its conftest does not see), the process is no
    subreaper: an orphan goes to init, which reaps it; nothing is left a zombie here."""
    assert reaper.start()
    reaper.active(False)
    try:
        parent = subprocess.run([sys.executable, "-c", ORPHAN], capture_output=True, text=True, check=True)
        orphan = psutil.Process(int(parent.stdout))
        assert orphan.ppid() != os.getpid()
    finally:
        reaper.active(True)  # as the e2e mark of this test wants
