"""The interactive loop of ``ctl top``: blessed around the pure parts.

Each turn: take in what the operator's thread has answered (:func:`apply`), start the
next echo wave when the interval is up (a balancing round instead while automatic
balancing is on: it echoes before and after), draw the frame if anything changed (the
clock's second included, for the "ago"s), then wait for a key for at most ``TICK``.
Only the key loop touches the terminal; only the worker touches the operator.

The terminal is restored (normal screen, cursor shown, cooked mode) by blessed's
context managers however the loop ends: q, Ctrl-C (KeyboardInterrupt), SIGTERM
(turned into SystemExit) or an error.
"""

from __future__ import annotations

import os
import signal
import time

from ctl.top import keys
from ctl.top.paint import Painter
from ctl.top.render import body_height, render, tree_rows
from ctl.top.view import ViewState, roster_from_topology
from ctl.top.worker import Outcome, OperatorWorker

#: Longest wait for a key before the loop looks at the operator's answers again (s).
TICK = 0.05

#: How long the first frame waits for the first wave's answer (s).
FIRST_WAVE_GRACE = 0.5

# blessed's key names → the names ctl.top.keys uses.
KEY_NAMES = {
    "KEY_UP": "up", "KEY_DOWN": "down", "KEY_PGUP": "pgup", "KEY_PGDOWN": "pgdn",
    "KEY_HOME": "home", "KEY_END": "end", "KEY_ENTER": "enter", "KEY_ESCAPE": "esc",
    "KEY_BACKSPACE": "backspace", "KEY_DELETE": "backspace",
    "KEY_KP_UP": "up", "KEY_KP_DOWN": "down", "KEY_KP_PAGE_UP": "pgup", "KEY_KP_PAGE_DOWN": "pgdn",
    "KEY_KP_ENTER": "enter",
}


def color_mode(term, no_color: bool) -> str:
    """The colour mode for a blessed terminal: "plain" when it takes no sequences (not a
    terminal, unless FORCE_COLOR), "none" under NO_COLOR or --no-color (attributes
    only), else what the terminal reports: 24-bit, 256 or 16 colours."""
    if not term.does_styling:
        return "plain"
    if no_color or os.environ.get("NO_COLOR"):
        return "none"
    colors = term.number_of_colors
    if colors >= 1 << 24:
        return "truecolor"
    if colors >= 256:
        return "256"
    if colors >= 8:
        return "16"
    return "none"


def glyph_mode(environ=os.environ, encoding: str | None = None) -> str:
    """Box drawing when the locale (LC_ALL, LC_CTYPE, LANG: the first one set) is UTF-8;
    the stream's encoding decides when none is set. Python itself may write UTF-8 under
    a C locale (PEP 538), but the terminal need not read it, so the locale wins."""
    for var in ("LC_ALL", "LC_CTYPE", "LANG"):
        value = environ.get(var)
        if value:
            return "unicode" if _is_utf8(value) else "ascii"
    return "unicode" if _is_utf8(encoding or "") else "ascii"


def _is_utf8(name: str) -> bool:
    return "utf8" in name.lower().replace("-", "").replace("_", "")


def apply(view: ViewState, snapshot: dict | None, outcome: Outcome) -> dict | None:
    """Take one answer from the operator's thread into ``view``; return the snapshot
    to draw from now on. Raises the error of a failed start (no operator at all)."""
    from daemon.operator import WaveTimeout

    kind, result, error, at = outcome.command.kind, outcome.result, outcome.error, outcome.at
    if kind == "start":
        raise error
    if isinstance(error, WaveTimeout) and kind in ("echo", "rebalance"):
        view.observe_timeout(error.unreachable, at, str(error), error.refused)
        if kind == "rebalance":
            view.note(f"balancing round failed: {error}", at)
        return snapshot
    if error is not None:
        what = {"echo": "echo wave", "rebalance": "balancing round", "finn": "Finn wave"}.get(kind, kind)
        view.note(f"{what} failed: {error}", at)
        return snapshot
    if kind == "echo":
        view.observe(result, at)
        return result
    if kind == "rebalance":
        view.observe_balance(result, at)
        after = result.get("after")
        if after:  # the round's closing echo is as fresh as a wave of our own
            view.observe(after, at)
            return after
        return snapshot
    if kind == "finn":
        view.observe_finn(result, at)
        return snapshot
    if kind == "submit":
        view.note(f"submitted {result.get('tasks', outcome.command.tasks)} tasks at {outcome.command.node}", at)
    return snapshot


def key_name(keystroke) -> str:
    """A blessed Keystroke as a name ctl.top.keys knows ("" for none)."""
    if keystroke.is_sequence:
        return KEY_NAMES.get(keystroke.name or "", keystroke.name or "")
    return str(keystroke)


def make_terminal(stream=None):
    """A blessed Terminal (on stdout by default) that emits cursor and screen sequences even under
    NO_COLOR: blessed reads NO_COLOR as "no sequences at all", but it only asks for no
    colour (no-color.org), and the view keeps honouring it through :func:`color_mode`."""
    from blessed import Terminal

    saved = os.environ.pop("NO_COLOR", None)
    try:
        return Terminal(stream=stream)
    finally:
        if saved is not None:
            os.environ["NO_COLOR"] = saved


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)


def run(topology, make_operator, *, interval: float = 1.0, no_color: bool = False,
        glyphs: str | None = None, term=None, sort: str = "tree", name_filter: str = "") -> int:
    """Show the live tree until q; returns the exit code. ``sort`` and ``name_filter``
    are the rows' first order and name filter (``s`` and ``/`` change them).

    ``make_operator()`` builds the Operator (called on the worker thread). Errors for
    people (a cluster that cannot be reached at all) are raised after the terminal is
    restored."""
    term = term or make_terminal()
    view = ViewState(roster=roster_from_topology(topology), cluster=topology.cluster.name, sort=sort,
                     filter=name_filter)
    color = color_mode(term, no_color)
    glyphs = glyphs or glyph_mode(encoding=getattr(term.stream, "encoding", None))
    worker = OperatorWorker(make_operator)
    previous_sigterm = signal.signal(signal.SIGTERM, _sigterm)
    worker.start()
    try:
        with term.fullscreen(), term.cbreak(), term.hidden_cursor():
            return _loop(term, worker, view, interval, color, glyphs)
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        worker.stop()


def _loop(term, worker: OperatorWorker, view: ViewState, interval: float, color: str, glyphs: str) -> int:
    painter = Painter()
    snapshot = None
    next_wave = 0.0
    # The first wave usually answers in milliseconds: wait a moment for it rather than
    # flash a frame of nodes "not reached by a wave yet".
    first_frame = time.monotonic() + FIRST_WAVE_GRACE
    drawn_second = None
    dirty = True
    while True:
        for outcome in worker.drain():
            snapshot = apply(view, snapshot, outcome)
            dirty = True
        clock = time.monotonic()
        if not view.paused and clock >= next_wave:
            _next_wave(worker, view)
            view.observe_supervisor(read_record(view.cluster))
            next_wave = clock + interval
        now = time.time()
        width, height = term.width, term.height
        waiting = snapshot is None and view.failure is None and clock < first_frame
        if not waiting and (dirty or (width, height) != painter.size or int(now) != drawn_second):
            lines = render(snapshot, width, height, view=view, color=color, glyphs=glyphs, now=now)
            text = painter.paint(lines, width, height)
            if text:
                term.stream.write(text)
                term.stream.flush()
            dirty, drawn_second = False, int(now)
        try:
            keystroke = term.inkey(timeout=TICK)
        except EOFError:  # the keyboard is gone: no key can ever quit, so stop now
            return 0
        if not keystroke:
            continue
        rows = [r.name for r in tree_rows(snapshot, view)]
        command = keys.press(view, key_name(keystroke), rows, body_height(height))
        dirty = True
        if command is keys.QUIT:
            return 0
        if command is not None:
            worker.submit(command)


def read_record(cluster: str):
    """The supervisor's record of the cluster (a small file: daemon/cluster/record.py
    ``ClusterRecord``), None if missing or damaged."""
    from daemon import rundir

    return rundir.usable_record(cluster)[0] if cluster else None


def _next_wave(worker: OperatorWorker, view: ViewState) -> None:
    """One echo wave per interval; a balancing round instead while automatic balancing
    is on (it echoes before and after). Never two of a kind in flight: a slow cluster
    gets fewer waves, not a queue of them."""
    if view.auto_balance:
        if not worker.busy("rebalance"):
            worker.submit(keys.REBALANCE)
    elif not worker.busy("echo") and not worker.busy("rebalance"):
        worker.submit(keys.ECHO)

