"""daemon/node.py without a cluster: the stop signal's handler, in this process; a node's
epoch and when its process says ready (the rule is daemon/core/node.py ``node_epoch`` and
``ready_at``): a node started with a fresh journal is ready at once; started again with
the same journal, its epoch runs the clock-offset bound ahead of its clock and it is ready
only twice the bound after its start; a process says ready only once every node it serves
is, and serves meanwhile."""

from __future__ import annotations

import logging
import os
import signal
import time
from types import SimpleNamespace

import pytest

from daemon.core.node import MAX_CLOCK_OFFSET
from daemon.journal import SqliteJournal
from daemon.node import NodeDaemon, NodeHost, ReadyLine, Stopping, once_a_second
from tests.node.hostile import SEED


@pytest.fixture
def stop_signals():
    """SIGTERM's and SIGINT's handlers as they were, restored afterwards."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("first, second", [(signal.SIGTERM, signal.SIGTERM), (signal.SIGTERM, signal.SIGINT),
                                           (signal.SIGINT, signal.SIGTERM)])
def test_a_second_stop_signal_does_not_interrupt_the_close(stop_signals, first, second):
    # As daemon/node.py's serve() installs it. Under Slurm, scancel signals the node and
    # its supervisor signals it again while it closes its burner and journal.
    host = NodeHost([])
    signal.signal(signal.SIGTERM, host.stop)
    signal.signal(signal.SIGINT, host.stop)
    with pytest.raises(Stopping):
        os.kill(os.getpid(), first)
    os.kill(os.getpid(), second)  # the close goes on: nothing is raised
    assert signal.getsignal(signal.SIGTERM) == signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def test_a_first_start_is_ready_at_once_and_a_restart_twice_the_bound_after_it(tmp_path):
    path = tmp_path / "pical.sqlite"
    first = NodeDaemon(SEED, "pical", journal=SqliteJournal(path))
    assert not first.recovered and first.ready_at <= time.time()
    first.close()
    before = time.time()
    again = NodeDaemon(SEED, "pical", journal=SqliteJournal(path))
    try:
        assert again.recovered and again.epoch > first.epoch
        assert again.epoch >= int((before + MAX_CLOCK_OFFSET) * 1e9)  # later than any wave the first joined
        assert again.ready_at >= before + 2 * MAX_CLOCK_OFFSET
        assert again.journal.last_epoch == again.epoch
        on_disk = SqliteJournal(path)
        assert on_disk.last_epoch == again.epoch  # for the next restart
        on_disk.close()
    finally:
        again.close()


def test_a_process_says_ready_only_once_every_node_it_serves_is(caplog):
    said = []
    nodes = [SimpleNamespace(name="root", ready_at=99.0), SimpleNamespace(name="pical", ready_at=101.0)]
    with caplog.at_level(logging.INFO, logger="echofinn.node.pical"):  # the node's log (daemon/logs.py)
        ready = ReadyLine(nodes, lambda: said.append("ready"), 100.0)
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("echofinn.node.pical", "ready in 1.00 s, once no new wave can be older than its epoch")]
    assert ready.check(100.0) == 101.0 and ready.check(100.999) == 101.0 and said == []
    assert ready.check(101.0) is None and said == ["ready"]
    assert ready.check(102.0) is None and said == ["ready"]  # once


@pytest.mark.parametrize("now, turn, says", [
    (100.0, 100.3, False),  # the line is due within the second: turn then
    (99.0, 100.0, False),  # not within the second: the usual turn
    (100.3, 101.3, True),  # due now: said, and the usual turn
])
def test_the_loop_turns_again_when_the_ready_line_is_due(now, turn, says):
    """once_a_second gives the loop its next turn: in a second, or sooner while the ready
    line waits for a time within that second (the loop serves meanwhile)."""
    said = []
    ready = ReadyLine([SimpleNamespace(name="pical", ready_at=100.3)], lambda: said.append(now), now)
    assert once_a_second([], None, None, now, ready) == pytest.approx(turn)
    assert said == ([now] if says else [])
    assert once_a_second([], 1, lambda pid: False, now, ready) is None  # the parent is gone: stop
