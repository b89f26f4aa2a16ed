"""Keys of ``ctl top``: each key changes the view state and may ask the cluster for work.

A key arrives as a name ("q", "up", "pgdn", "enter", "esc", "backspace", " ", a digit);
:func:`press` applies it to the :class:`~ctl.top.view.ViewState` and returns the
:class:`Command` the worker should run, if any. Two modes, each a table of handlers:
browsing the tree, and the two prompt lines — how many tasks to submit, and the name
filter ``/`` opens (while one is open, letters are not commands: "q" typed into the
filter is a "q", not quit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ctl.top.view import SORTS, ViewState

#: Digits the submit prompt accepts: enough for 99999 tasks.
PROMPT_DIGITS = 5


@dataclass(frozen=True)
class Command:
    """Work for the cluster, run by the operator's thread (``kind`` names the call)."""

    kind: str  # "echo", "rebalance", "finn", "submit" or "quit"
    node: str | None = None
    tasks: int = 0


ECHO = Command("echo")
REBALANCE = Command("rebalance")
FINN = Command("finn", tasks=1)  # one task per node, enqueued as the node decides
QUIT = Command("quit")

# Raw characters some terminals send where blessed has no key name.
_ALIASES = {"\n": "enter", "\r": "enter", "\x1b": "esc", "\x7f": "backspace", "\b": "backspace"}


@dataclass
class _Keypress:
    view: ViewState
    rows: list[str]  # node names in screen order
    body: int  # tree rows on screen


def _quit(k: _Keypress) -> Command:
    return QUIT


def _rebalance(k: _Keypress) -> Command:
    return REBALANCE


def _finn(k: _Keypress) -> Command:
    return FINN


def _toggle_auto(k: _Keypress) -> None:
    k.view.auto_balance = not k.view.auto_balance


def _toggle_pause(k: _Keypress) -> None:
    k.view.paused = not k.view.paused


def _toggle_help(k: _Keypress) -> None:
    k.view.show_help = not k.view.show_help


def _close_help(k: _Keypress) -> None:
    """Esc: close the help; without it open, clear the name filter."""
    if k.view.show_help:
        k.view.show_help = False
    else:
        k.view.filter = ""


def _up(k: _Keypress) -> None:
    k.view.move(k.rows, -1, k.body)


def _down(k: _Keypress) -> None:
    k.view.move(k.rows, +1, k.body)


def _page_up(k: _Keypress) -> None:
    k.view.page(k.rows, -1, k.body)


def _page_down(k: _Keypress) -> None:
    k.view.page(k.rows, +1, k.body)


def _home(k: _Keypress) -> None:
    k.view.move(k.rows, -len(k.rows), k.body)


def _end(k: _Keypress) -> None:
    k.view.move(k.rows, len(k.rows), k.body)


def _collapse(k: _Keypress) -> None:
    k.view.toggle_collapse(k.rows)


def _cycle_sort(k: _Keypress) -> None:
    k.view.sort = SORTS[(SORTS.index(k.view.sort) + 1) % len(SORTS)]
    k.view.scroll = 0


def _open_filter(k: _Keypress) -> None:
    k.view.filtering = True
    k.view.scroll = 0


def _ask_tasks(k: _Keypress) -> None:
    if k.rows:  # pin the target now: the tree may reshape while the user types
        k.view.selected = k.rows[k.view.selected_index(k.rows)]
        k.view.prompt = ""


@dataclass(frozen=True)
class Action:
    """One thing a key does: the keys, the footer's label (none: not in the footer), the
    help line, and the handler. ``ACTIONS`` is the one table the key dispatch, the help
    screen and the footer are all made from (ctl/top/render.py reads it)."""

    keys: tuple[str, ...]  # key names as :func:`press` gets them
    shown: str  # how the help screen writes the keys
    help: str
    handler: Callable[[_Keypress], Command | None]
    footer: str | None = None  # label in the footer; "pause" turns "resume" while paused


ACTIONS: tuple[Action, ...] = (
    Action(("q",), "q, Ctrl-C", "quit", _quit, "quit"),
    Action(("up", "down", "pgup", "pgdn", "home", "end"), "↑ ↓  PgUp PgDn", "select a node, scroll a page", None),
    Action(("enter", " "), "Enter, space", "collapse or expand the selected subtree", _collapse),
    Action(("r",), "r", "one balancing round now", _rebalance, "balance"),
    Action(("a",), "a", "automatic balancing: one round every interval", _toggle_auto),  # the header says when it is on
    Action(("f",), "f", "a Finn wave: every node enqueues one task as it decides", _finn, "finn"),
    Action(("t",), "t", "submit tasks at the selected node (asks how many)", _ask_tasks, "tasks"),
    Action(("s",), "s", "sort: " + " → ".join(SORTS) + " (all but the tree keep rows still)", _cycle_sort, "sort"),
    Action(("/",), "/", "filter nodes by name (Enter keeps it, Esc clears it)", _open_filter),
    Action(("p",), "p", "pause or resume the echo waves", _toggle_pause, "pause"),
    Action(("?", "esc"), "? Esc", "this help (Esc closes it, else clears the filter)", None, "help"),
)

BROWSING: dict[str, Callable[[_Keypress], Command | None]] = {
    key: action.handler for action in ACTIONS if action.handler is not None for key in action.keys
}
BROWSING.update(
    {
        "up": _up,
        "down": _down,
        "pgup": _page_up,
        "pgdn": _page_down,
        "home": _home,
        "end": _end,
        "?": _toggle_help,
        "esc": _close_help,
    }
)


def _prompt(k: _Keypress, key: str) -> Command | None:
    view = k.view
    if key == "esc":
        view.prompt = None
    elif key == "backspace":
        view.prompt = view.prompt[:-1]
    elif key == "enter":
        digits, view.prompt = view.prompt, None
        tasks = int(digits) if digits else 0
        if tasks > 0 and view.selected is not None:
            return Command("submit", node=view.selected, tasks=tasks)
    elif len(key) == 1 and key in "0123456789" and len(view.prompt) < PROMPT_DIGITS:
        view.prompt += key
    return None


def _filter(k: _Keypress, key: str) -> None:
    view = k.view
    if key == "esc":
        view.filter, view.filtering = "", False
    elif key == "enter":
        view.filtering = False
    elif key == "backspace":
        view.filter = view.filter[:-1]
    elif len(key) == 1 and key.isprintable():
        view.filter += key
    view.scroll = 0


def press(view: ViewState, key: str, rows: list[str], body: int) -> Command | None:
    """Apply one key to ``view``; return the Command it asks for, or None.

    ``rows`` are the node names on the tree in screen order, ``body`` how many fit.
    Unknown keys are ignored.
    """
    key = _ALIASES.get(key, key)
    k = _Keypress(view, rows, body)
    if view.prompt is not None:
        return _prompt(k, key)
    if view.filtering:
        return _filter(k, key)
    handler = BROWSING.get(key)
    return handler(k) if handler else None
