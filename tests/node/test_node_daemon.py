"""The node daemon's epoch and readiness (daemon/node.py; the rule is daemon/core/node.py
``node_epoch`` and ``ready_at``): a node started with a fresh journal is ready at once;
started again with the same journal, its epoch runs the clock-offset bound ahead of its
clock and it is ready only twice the bound after its start; a process says ready only
once every node it serves is."""

from __future__ import annotations

import time
from types import SimpleNamespace

from daemon.core.node import MAX_CLOCK_OFFSET
from daemon.journal import SqliteJournal
from daemon.node import NodeDaemon, wait_until_ready
from tests.node.hostile import SEED


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


def test_a_process_says_ready_only_once_every_node_it_serves_is(capsys):
    now = time.time()
    nodes = [SimpleNamespace(name="root", ready_at=now - 1), SimpleNamespace(name="pical", ready_at=now + 0.3)]
    wait_until_ready(nodes)
    assert time.time() >= now + 0.3  # a lower bound: the machine's speed cannot break it
    err = capsys.readouterr().err
    assert "node pical: ready in " in err and "root" not in err
