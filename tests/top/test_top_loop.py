"""The loop's pure helpers (answers into the view, terminal capabilities, key names) and
the worker thread's hand-off. The loop itself runs against a real cluster in
test_top_e2e.py."""

from __future__ import annotations

import io
import threading
import time

import pytest
from blessed import Terminal
from blessed.keyboard import Keystroke

import top_synthetic as synth
from ctl.top import keys
from ctl.top.keys import Command
from ctl.top.loop import apply, color_mode, glyph_mode, key_name, make_terminal
from ctl.top.view import ViewState
from ctl.top.worker import OperatorWorker, Outcome
from daemon.errors import UserError
from daemon.operator import NodeError, WaveTimeout

T = 1_764_245_123.0


def outcome(kind, result=None, error=None, at=T, **command):
    return Outcome(Command(kind, **command), result, error, at)


def test_echo_answer_becomes_the_snapshot(seed_roster):
    view = ViewState(roster=seed_roster)
    snap = synth.snapshot(seed_roster, t=T)
    assert apply(view, None, outcome("echo", snap)) is snap
    assert len(view.history["root"]) == 1 and view.failure is None


def test_echo_timeout_marks_the_silent_and_keeps_the_last_snapshot(seed_roster):
    view = ViewState(roster=seed_roster)
    snap = synth.snapshot(seed_roster, t=T)
    error = WaveTimeout("echo wave e-1 from root did not come back within 2 s; silent nodes: pical", ["pical"])
    assert apply(view, snap, outcome("echo", error=error, at=T + 3)) is snap
    assert view.dead_since == {"pical": T + 3}
    assert view.failure.unreachable == ("pical",) and "did not come back" in view.failure.message


def test_balancing_round_brings_its_closing_echo(seed_roster):
    view = ViewState(roster=seed_roster)
    before = synth.snapshot(seed_roster, seed=1, t=T)
    after = synth.snapshot(seed_roster, seed=2, t=T + 1)
    result = {"moves": [], "imbalance_before": 2.0, "imbalance_after": 1.5, "before": before, "after": after}
    assert apply(view, before, outcome("rebalance", result, at=T + 1)) is after
    assert view.last_balance == (T + 1, result)
    assert len(view.history["root"]) == 1


def test_finn_submit_and_errors_go_to_the_header_and_footer(seed_roster):
    view = ViewState(roster=seed_roster)
    snap = synth.snapshot(seed_roster, t=T)
    finn = {"decided": ["root"], "undecided": [], "messages": 7, "elapsed_ms": 1.0}
    assert apply(view, snap, outcome("finn", finn)) is snap and view.last_finn == (T, finn)
    apply(view, snap, outcome("submit", {"node": "pical", "tasks": 3}, node="pical", tasks=3))
    assert view.status == (T, "submitted 3 tasks at pical")
    apply(view, snap, outcome("submit", error=NodeError("node pical: queue full"), node="pical", tasks=3))
    assert view.status == (T, "submit failed: node pical: queue full")
    apply(view, snap, outcome("finn", error=WaveTimeout("no answer in time", ["root"])))
    assert view.status[1] == "Finn wave failed: no answer in time"
    assert view.dead_since == {}  # a Finn wave's silence is not the echo's verdict


def test_a_failed_start_is_raised():
    with pytest.raises(UserError, match="no cluster"):
        apply(ViewState(), None, outcome("start", error=UserError("no cluster")))


def test_colour_modes_from_the_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("CLICOLOR_FORCE", raising=False)
    assert color_mode(Terminal(stream=io.StringIO()), False) == "plain"  # not a terminal
    term = Terminal(kind="xterm-256color", stream=io.StringIO(), force_styling=True)
    for colors, mode in ((1 << 24, "truecolor"), (256, "256"), (16, "16"), (8, "16"), (0, "none")):
        term.number_of_colors = colors
        assert color_mode(term, False) == mode
    term.number_of_colors = 1 << 24
    assert color_mode(term, True) == "none"
    monkeypatch.setenv("NO_COLOR", "1")
    assert color_mode(term, False) == "none"


def test_no_color_keeps_the_screen_sequences(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("FORCE_COLOR", "1")  # stands for "a terminal" here: the stream is a StringIO
    term = make_terminal(io.StringIO())
    assert term.does_styling and term.enter_fullscreen and term.hide_cursor
    assert color_mode(term, False) == "none"


def test_glyphs_follow_the_locale():
    assert glyph_mode({"LANG": "en_US.UTF-8"}) == "unicode"
    assert glyph_mode({"LC_ALL": "C", "LANG": "en_US.UTF-8"}) == "ascii"
    assert glyph_mode({"LC_CTYPE": "de_DE.utf8"}) == "unicode"
    assert glyph_mode({"LANG": "POSIX"}) == "ascii"
    assert glyph_mode({}, encoding="utf-8") == "unicode"
    assert glyph_mode({}, encoding="ascii") == "ascii"


def test_key_names():
    assert key_name(Keystroke("q")) == "q"
    assert key_name(Keystroke("\x1b[A", code=259, name="KEY_UP")) == "up"
    assert key_name(Keystroke("\x1b[6~", code=338, name="KEY_PGDOWN")) == "pgdn"
    assert key_name(Keystroke("\n", code=343, name="KEY_ENTER")) == "enter"


# -- the worker thread ----------------------------------------------------------------------------


class RecordingOperator:
    """Stands in for daemon.operator.Operator to watch the thread hand-off: records the
    thread of every call. (The real operator is driven by test_top_e2e.py.)"""

    def __init__(self, gate: threading.Event | None = None):
        self.calls: list[tuple[str, str]] = []
        self.closed_on: str | None = None
        self.gate = gate

    def echo(self):
        if self.gate is not None:
            self.gate.wait(5)
        self.calls.append(("echo", threading.current_thread().name))
        return {"nodes": []}

    def finn(self, tasks):
        self.calls.append((f"finn {tasks}", threading.current_thread().name))
        raise WaveTimeout("no answer in time", ["x"])

    def close(self):
        self.closed_on = threading.current_thread().name


def wait_for(worker, count):
    got = []
    deadline = time.monotonic() + 10
    while len(got) < count and time.monotonic() < deadline:
        got.extend(worker.drain())
        time.sleep(0.01)
    return got


def test_worker_runs_the_operator_on_its_own_thread():
    op = RecordingOperator()
    worker = OperatorWorker(lambda: op)
    worker.start()
    worker.submit(keys.ECHO)
    worker.submit(keys.FINN)
    got = wait_for(worker, 2)
    worker.stop()
    assert [o.command.kind for o in got] == ["echo", "finn"]
    assert got[0].result == {"nodes": []} and isinstance(got[1].error, WaveTimeout)
    assert {thread for _, thread in op.calls} == {"ctl-top-operator"}
    assert op.closed_on == "ctl-top-operator"


def test_worker_counts_what_is_in_flight():
    gate = threading.Event()
    worker = OperatorWorker(lambda: RecordingOperator(gate))
    worker.start()
    worker.submit(keys.ECHO)
    assert worker.busy("echo") and not worker.busy("rebalance")
    gate.set()
    wait_for(worker, 1)
    assert not worker.busy("echo")
    worker.stop()


def test_worker_reports_a_failed_start():
    def no_operator():
        raise UserError("cluster seed is not running")

    worker = OperatorWorker(no_operator)
    worker.start()
    got = wait_for(worker, 1)
    worker.stop()
    assert got[0].command.kind == "start" and "not running" in str(got[0].error)
