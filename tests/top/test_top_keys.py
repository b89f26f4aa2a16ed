"""Keys and the view state: what each key does to the view, and what it asks of the cluster."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples

import top_synthetic as synth
from ctl.top import keys
from ctl.top.keys import Command, press
from top_frames import visible
from ctl.top.render import body_height, render, tree_rows
from ctl.top.view import HISTORY, ViewState, imbalance

T = 1_764_245_123.0


def rows_of(view, snap):
    return [r.name for r in tree_rows(snap, view)]


def test_commands_for_the_cluster(seed_roster):
    view = ViewState(roster=seed_roster)
    rows = [r.name for r in seed_roster]
    assert press(view, "r", rows, 10) == keys.REBALANCE
    assert press(view, "f", rows, 10) == Command("finn", tasks=1)
    assert press(view, "q", rows, 10) is keys.QUIT
    assert press(view, "x", rows, 10) is None  # unknown keys do nothing


def test_toggles(seed_roster):
    view = ViewState(roster=seed_roster)
    rows = [r.name for r in seed_roster]
    for key, field in (("a", "auto_balance"), ("p", "paused"), ("?", "show_help")):
        assert press(view, key, rows, 10) is None
        assert getattr(view, field) is True
        press(view, key, rows, 10)
        assert getattr(view, field) is False
    press(view, "?", rows, 10)
    press(view, "esc", rows, 10)
    assert not view.show_help


def test_arrows_move_the_selection_and_the_scroll_follows():
    r = synth.topology(50, seed=2)
    snap = synth.snapshot(r, seed=2, t=T)
    view = ViewState(roster=r)
    rows = rows_of(view, snap)
    body = body_height(24)
    press(view, "up", rows, body)
    assert view.selected == rows[0] and view.scroll == 0  # already at the top
    for _ in range(body):
        press(view, "down", rows, body)
    assert view.selected == rows[body] and view.scroll == 1  # one past the page: scrolled one
    press(view, "end", rows, body)
    assert view.selected == rows[-1] and view.scroll == len(rows) - body
    press(view, "pgup", rows, body)
    assert view.selected == rows[-1 - body] and view.scroll == len(rows) - 2 * body
    press(view, "home", rows, body)
    assert view.selected == rows[0] and view.scroll == 0
    press(view, "pgdn", rows, body)
    assert view.selected == rows[body] and view.scroll == body


def test_selection_follows_the_node_when_the_tree_reshapes(seed_roster):
    view = ViewState(roster=seed_roster)
    a = synth.snapshot(seed_roster, t=T, initiator="root")
    press(view, "down", rows_of(view, a), 10)
    press(view, "down", rows_of(view, a), 10)
    chosen = view.selected
    b = synth.snapshot(seed_roster, t=T, initiator="pical")  # another tree, another order
    rows = rows_of(view, b)
    assert rows[view.selected_index(rows)] == chosen


def test_enter_and_space_collapse_and_expand(seed_roster):
    snap = synth.snapshot(seed_roster, t=T)
    view = ViewState(roster=seed_roster, selected="affixed")
    press(view, "enter", rows_of(view, snap), 10)
    assert rows_of(view, snap) == ["root", "affixed", "outwhirled"]
    press(view, " ", rows_of(view, snap), 10)
    assert len(rows_of(view, snap)) == 8


def test_submit_prompt(seed_roster):
    view = ViewState(roster=seed_roster, selected="haywagon")
    rows = [r.name for r in seed_roster]
    assert press(view, "t", rows, 10) is None and view.prompt == ""
    for key in "1q2x":  # letters are not commands inside the prompt
        assert press(view, key, rows, 10) is None
    assert view.prompt == "12"
    press(view, "backspace", rows, 10)
    press(view, "5", rows, 10)
    assert press(view, "\r", rows, 10) == Command("submit", node="haywagon", tasks=15)
    assert view.prompt is None
    press(view, "t", rows, 10)
    press(view, "7", rows, 10)
    assert press(view, "\x1b", rows, 10) is None and view.prompt is None  # Esc cancels
    press(view, "t", rows, 10)
    assert press(view, "enter", rows, 10) is None  # nothing typed, nothing sent
    press(view, "t", rows, 10)
    for _ in range(9):
        press(view, "9", rows, 10)
    assert view.prompt == "99999"
    press(view, "t", [], 10)


def test_prompt_needs_a_node():
    view = ViewState()
    assert press(view, "t", [], 10) is None and view.prompt is None


# -- what the waves tell the view ----------------------------------------------------------


def test_history_is_one_sample_per_wave_for_every_node(seed_roster):
    view = ViewState(roster=seed_roster)
    view.observe(synth.snapshot(seed_roster, seed=1, t=T), T)
    view.observe_timeout(["pical"], T + 1)
    view.observe(synth.snapshot(seed_roster, seed=2, t=T + 2, missing=("pical",)), T + 2)
    assert {len(h) for h in view.history.values()} == {3}
    assert list(view.history["pical"])[1:] == [None, None]
    assert view.history["root"][1] is None  # the failed wave told nothing about anyone
    assert view.dead_since == {"pical": T + 1}
    for k in range(HISTORY + 5):
        view.observe(synth.snapshot(seed_roster, seed=k, t=T + 3 + k), T + 3 + k)
    assert {len(h) for h in view.history.values()} == {HISTORY}


def test_timeout_forgets_nodes_that_answer_pings_again(seed_roster):
    view = ViewState(roster=seed_roster)
    view.observe_timeout(["pical", "root"], T)
    view.observe_timeout(["pical"], T + 1)
    assert view.dead_since == {"pical": T}  # since the first silence, not the latest
    assert view.failure.unreachable == ("pical",)


def sample(name, work, cpus, outgoing=(), unconfirmed=()):
    return {"name": name, "work": work, "cpus": cpus, "outgoing": list(outgoing), "unconfirmed": list(unconfirmed)}


def test_imbalance_is_max_work_per_cpu_over_the_clusters_with_work_in_flight_at_its_destination():
    assert imbalance([sample("a", 6.0, 2), sample("b", 2.0, 2)]) == 1.5  # 3 / (8 / 4)
    assert imbalance([sample("a", 6.0, 1), sample("b", 0.0, 3)]) == 4.0  # 6 / (6 / 4): cpus weigh
    # 3 s on their way from a to b: b's, not a's (a no longer holds them)
    flying = [sample("a", 1.0, 1, outgoing=[["m", "b", 1, 3.0]]), sample("b", 0.0, 1)]
    assert imbalance(flying) == 1.5  # b: 3 / (4 / 2)
    accepted = [sample("a", 1.0, 1, outgoing=[["m", "b", 1, 3.0]]), sample("b", 3.0, 1, unconfirmed=["m"])]
    assert imbalance(accepted) == 1.5  # in b's queue already: counted once
    assert imbalance([sample("a", 0.0, 2), sample("b", 0.0, 2)]) is None
    assert imbalance([]) is None


@settings(max_examples=examples(80))
@given(n=st.integers(1, 40), seed=st.integers(0, 1000),
       presses=st.lists(st.sampled_from(["up", "down", "pgup", "pgdn", "home", "end", "enter", " "]), max_size=40),
       height=st.integers(8, 40))
def test_selection_always_on_screen(n, seed, presses, height):
    r = synth.topology(n, seed=seed)
    snap = synth.snapshot(r, seed=seed, t=T)
    view = ViewState(roster=r)
    body = body_height(height)
    for key in presses:
        press(view, key, rows_of(view, snap), body)
        rows = rows_of(view, snap)
        selected = rows[view.selected_index(rows)]
        lines = [visible(x) for x in render(snap, 100, height, view=view, color="plain")]
        marked = [x for x in lines[4:4 + body] if x.startswith("▶")]
        assert len(marked) == 1 and selected in marked[0], (key, selected, lines)
        if key not in ("enter", " "):  # a collapse shortens the tree; render clamps, the next move too
            assert 0 <= view.scroll <= max(0, len(rows) - body)
