"""One supervised process (daemon/cluster/process.py): its transition table, row by row;
an event a state has no row for; the restart policy's delays and limits; how a process
serving several nodes reads its ready line. No process is started: the events are
fired by hand, as the supervisor fires them."""

from __future__ import annotations

import itertools

import pytest

from daemon.cluster.process import (
    TRANSITIONS,
    Event,
    IllegalTransition,
    ProcessState,
    RestartPolicy,
    SupervisedProcess,
)
from daemon.cluster.record import NodeEntry

S, E = ProcessState, Event

# Every legal move, written out again here (not read from TRANSITIONS): the table must
# say exactly this.
LEGAL = {
    (S.STARTING, E.SPAWNED): S.STARTING,
    (S.BACKOFF, E.SPAWNED): S.STARTING,
    (S.STARTING, E.READY): S.RUNNING,
    (S.STARTING, E.CRASHED): S.BACKOFF,
    (S.RUNNING, E.CRASHED): S.BACKOFF,
    (S.STARTING, E.GAVE_UP): S.FATAL,
    (S.RUNNING, E.GAVE_UP): S.FATAL,
    (S.STARTING, E.STOP): S.STOPPED,
    (S.RUNNING, E.STOP): S.STOPPED,
    (S.BACKOFF, E.STOP): S.STOPPED,
    (S.STOPPED, E.STOP): S.STOPPED,
    (S.FATAL, E.STOP): S.FATAL,
    (S.STOPPING, E.STOP): S.STOPPED,
    (S.STARTING, E.OPERATOR_STOP): S.STOPPING,
    (S.RUNNING, E.OPERATOR_STOP): S.STOPPING,
    (S.BACKOFF, E.OPERATOR_STOP): S.STOPPED,
    (S.STOPPING, E.OPERATOR_STOP): S.STOPPING,
    (S.STOPPED, E.OPERATOR_STOP): S.STOPPED,
    (S.FATAL, E.OPERATOR_STOP): S.FATAL,
    (S.STOPPING, E.EXITED): S.STOPPED,
    (S.STOPPED, E.OPERATOR_START): S.STARTING,
    (S.FATAL, E.OPERATOR_START): S.STARTING,
    (S.BACKOFF, E.OPERATOR_START): S.STARTING,
    (S.STARTING, E.OPERATOR_START): S.STARTING,
    (S.RUNNING, E.OPERATOR_START): S.RUNNING,
    (S.STOPPING, E.OPERATOR_START): S.STOPPING,
}
ILLEGAL = sorted(set(itertools.product(S, E)) - set(LEGAL))


def process(tmp_path, state: ProcessState = S.STARTING, nodes: int = 1) -> SupervisedProcess:
    p = SupervisedProcess({f"n{k}": f"tcp://127.0.0.1:{11 + k}" for k in range(nodes)}, tmp_path / "n0.log")
    p.state = state  # placed in the state under test, as if earlier events had led there
    return p


def test_the_table_is_exactly_the_legal_moves():
    assert TRANSITIONS == LEGAL


@pytest.mark.parametrize("state, event", sorted(LEGAL))
def test_each_legal_move_goes_where_the_table_says(tmp_path, state, event):
    p = process(tmp_path, state)
    p.since = 0.0
    assert p.fire(event) == LEGAL[state, event]
    assert p.state == LEGAL[state, event]
    assert (p.since > 0.0) if p.state != state else (p.since == 0.0)  # since: when the state began


@pytest.mark.parametrize("state, event", ILLEGAL)
def test_an_illegal_move_raises_naming_process_state_and_event(tmp_path, state, event):
    p = process(tmp_path, state)
    with pytest.raises(IllegalTransition) as caught:
        p.fire(event)
    assert str(caught.value) == f"process of node n0: no transition from {state.value} on event {event.value!r}"
    assert p.state == state  # nothing changed


def test_a_stopped_process_is_never_started_again(tmp_path):
    p = process(tmp_path, S.STOPPED)
    with pytest.raises(IllegalTransition, match="no transition from STOPPED on event 'spawned'"):
        p.spawned()


def test_a_life_from_start_through_crashes_to_fatal(tmp_path):
    policy = RestartPolicy("on-failure", backoff_max=0.3, max_crashes=3, window=60.0)
    p = process(tmp_path)
    p.spawned()
    p.pid = 4242
    p.heard("ready 4242 tcp://127.0.0.1:1")
    assert p.state == S.RUNNING
    assert p.crashed(100.0, policy) == pytest.approx(0.1) and p.state == S.BACKOFF and p.restart_at == 100.1
    p.spawned(ready_by=200.0)
    assert p.state == S.STARTING and p.restart_at is None and p.ready_by == 200.0
    assert p.crashed(101.0, policy) == pytest.approx(0.2) and p.state == S.BACKOFF and p.ready_by is None
    p.spawned()
    assert p.crashed(102.0, policy) is None and p.state == S.FATAL  # the third crash within 60 s
    p.stopped()
    assert p.state == S.FATAL and p.restart_at is None


def test_stop_calls_off_a_restart_that_is_due(tmp_path):
    p = process(tmp_path)
    p.crashed(10.0, RestartPolicy("on-failure", 5.0, 5, 60.0))
    assert p.state == S.BACKOFF and p.restart_at is not None
    p.stopped()
    assert p.state == S.STOPPED and p.restart_at is None and p.ready_by is None


def test_an_operator_stop_waits_for_the_reaping_and_is_never_restarted(tmp_path):
    p = process(tmp_path, S.RUNNING)
    assert p.operator_stop(now=50.0, grace=3.0) is True  # signal it now
    assert p.state == S.STOPPING and p.stop_by == 53.0 and p.restart_at is None
    assert p.operator_stop(now=51.0, grace=3.0) is False and p.stop_by == 53.0  # asked again: nothing new
    p.exited()
    assert p.state == S.STOPPED and p.stop_by is None
    with pytest.raises(IllegalTransition, match="no transition from STOPPED on event 'crashed'"):
        p.fire(E.CRASHED)  # the restart policy has no way out of STOPPED
    with pytest.raises(IllegalTransition):
        p.spawned()  # nor a restart timer: only an operator start
    assert p.operator_start() is True and p.state == S.STARTING


def test_an_operator_stop_in_backoff_calls_off_the_restart_without_a_signal(tmp_path):
    p = process(tmp_path)
    p.crashed(10.0, RestartPolicy("on-failure", 5.0, 5, 60.0))
    assert p.operator_stop(now=11.0, grace=3.0) is False
    assert p.state == S.STOPPED and p.restart_at is None and p.stop_by is None


def test_an_operator_start_of_a_fatal_process_forgets_its_crashes(tmp_path):
    policy = RestartPolicy("on-failure", backoff_max=1.0, max_crashes=2, window=60.0)
    p = process(tmp_path)
    p.crashed(1.0, policy)
    p.spawned()
    assert p.crashed(2.0, policy) is None and p.state == S.FATAL
    assert p.operator_start() is True and p.state == S.STARTING and not p.crashes
    p.spawned()
    assert p.crashed(3.0, policy) == pytest.approx(0.1)  # a first crash again, not FATAL


def test_a_restart_of_a_running_process_starts_it_once_reaped(tmp_path):
    p = process(tmp_path, S.RUNNING)
    assert p.operator_stop(now=0.0, grace=3.0) is True
    assert p.operator_start() is False  # still stopping: started when reaped
    assert p.state == S.STOPPING and p.start_after_stop
    p.exited()
    assert p.state == S.STOPPED and p.start_after_stop  # the supervisor now fires operator start
    assert p.operator_start() is True and p.state == S.STARTING and not p.start_after_stop


@pytest.mark.parametrize("state", [S.STARTING, S.RUNNING])
def test_an_operator_start_of_a_live_process_changes_nothing(tmp_path, state):
    p = process(tmp_path, state)
    assert p.operator_start() is False and p.state == state


def test_the_supervisors_stop_reaps_a_stopping_process_as_stopped(tmp_path):
    p = process(tmp_path, S.RUNNING)
    p.operator_stop(now=0.0, grace=3.0)
    p.operator_start()
    p.stopped()
    assert p.state == S.STOPPED and p.stop_by is None and not p.start_after_stop


@pytest.mark.parametrize("crashes, delay", [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (8, 1.0), (9, None)])
def test_the_backoff_doubles_up_to_its_maximum_until_the_last_crash(crashes, delay):
    policy = RestartPolicy("on-failure", backoff_max=1.0, max_crashes=9, window=60.0)
    assert policy.delay(crashes) == (pytest.approx(delay) if delay is not None else None)


def test_policy_never_gives_up_at_the_first_crash(tmp_path):
    p = process(tmp_path, S.RUNNING)
    assert p.crashed(1.0, RestartPolicy("never", 5.0, 5, 60.0)) is None and p.state == S.FATAL


def test_crashes_older_than_the_window_are_forgotten(tmp_path):
    policy = RestartPolicy("on-failure", backoff_max=5.0, max_crashes=2, window=10.0)
    p = process(tmp_path, S.RUNNING)
    assert p.crashed(0.0, policy) == pytest.approx(0.1)
    p.spawned()
    assert p.crashed(10.5, policy) == pytest.approx(0.1)  # the first is out of the window: one crash again
    assert list(p.crashes) == [10.5]


# --- a process serving several nodes: its ready line -------------------------------------

NAMES = ("n0", "n1", "n2")


def test_a_group_is_ready_with_one_endpoint_per_node(tmp_path):
    unit = process(tmp_path, nodes=3)
    assert [NodeEntry.of(unit, name).endpoint for name in NAMES] == [f"tcp://127.0.0.1:{p}" for p in (11, 12, 13)]
    unit.pid = 4242
    lines = unit.heard("ready 4242 tcp://127.0.0.1:1 tcp://127.0.0.1:2 tcp://127.0.0.1:3")
    assert lines.split("\n") == ["ready n0 4242 tcp://127.0.0.1:1", "ready n1 4242 tcp://127.0.0.1:2",
                                 "ready n2 4242 tcp://127.0.0.1:3"]
    assert unit.state == S.RUNNING and unit.error is None
    assert [NodeEntry.of(unit, name).endpoint for name in NAMES] == [f"tcp://127.0.0.1:{p}" for p in (1, 2, 3)]
    assert all(NodeEntry.of(unit, name).pid == 4242 for name in NAMES)


@pytest.mark.parametrize("line", ["ready 4242 tcp://127.0.0.1:1 tcp://127.0.0.1:2",  # one short
                                  "ready 4242 tcp://127.0.0.1:1 tcp://127.0.0.1:2 tcp://127.0.0.1:3 tcp://x:4",
                                  "ready 4243 tcp://127.0.0.1:1 tcp://127.0.0.1:2 tcp://127.0.0.1:3",  # not its pid
                                  "ready 4242 tcp://127.0.0.1:1  tcp://127.0.0.1:3"])  # an empty endpoint
def test_a_group_ready_line_that_does_not_fit_fails_naming_it(tmp_path, line):
    unit = process(tmp_path, nodes=3)
    unit.pid = 4242
    said = unit.heard(line)
    assert said.startswith("error node n0: bad ready line") and repr(line) in said, said
    assert unit.state != S.RUNNING
