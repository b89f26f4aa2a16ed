"""``ctl top``'s row orders and name filter: flat orders keep rows still from wave to
wave while the spanning tree moves; ``s`` cycles the orders, ``/`` edits the filter; the
frames are read back through pyte, as tests/top/test_top_render.py does."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples
import top_synthetic as synth
from top_frames import roster, screen_of, visible
from ctl.top.keys import press
from ctl.top.render import render, tree_rows
from ctl.top.tree import _filtered_tree
from ctl.top.view import SORTS, ViewState

T = 1_764_245_123.4


def names_on_screen(snap, view, width=120, height=30) -> list[str]:
    """The node names of the tree rows, top to bottom, as a terminal shows them."""
    screen = screen_of(render(snap, width, height, view=view, color="plain"), width, height)
    known = {r.name for r in view.roster}
    out = []
    for line in screen.display[4:-1]:
        words = [w.strip("▶│├└─╌ ") for w in line.split()]
        out += [w for w in words[:3] if w in known][:1]
    return out


def two_waves():
    """Two echo waves over the DAG from different initiators: different spanning trees."""
    dag = roster("dag.toml")
    return dag, synth.snapshot(dag, seed=1, t=T, initiator="issuance"), \
        synth.snapshot(dag, seed=2, t=T + 1, initiator="readiness")


def test_the_tree_moves_between_waves_and_the_flat_orders_do_not():
    dag, first, second = two_waves()
    tree = ViewState(roster=dag)
    assert names_on_screen(first, tree) != names_on_screen(second, tree)  # what the flat orders are for
    for sort in ("topology", "name"):
        view = ViewState(roster=dag, sort=sort)
        assert names_on_screen(first, view) == names_on_screen(second, view) != []
    assert names_on_screen(first, ViewState(roster=dag, sort="topology")) == [r.name for r in dag]
    assert names_on_screen(first, ViewState(roster=dag, sort="name")) == sorted(r.name for r in dag)


def test_load_and_queue_put_the_largest_first_ties_in_file_order_the_silent_last():
    dag = roster("dag.toml")
    names = [r.name for r in dag]
    snap = synth.snapshot(dag, seed=5, t=T, initiator="issuance", missing={names[3]})
    by = {n["name"]: n for n in snap["nodes"]}
    for sort, key in (("load", "load"), ("queue", "queued")):
        rows = tree_rows(snap, ViewState(roster=dag, sort=sort))
        assert rows[-1].name == names[3] and rows[-1].node is None
        answered = [r.name for r in rows[:-1]]
        assert answered == sorted(answered, key=lambda n: (-by[n][key], names.index(n)))
        assert all(r.depth == 0 and r.guides == () for r in rows)


def test_a_flat_order_shows_the_nodes_a_fold_hides_in_the_tree(seed_roster):
    snap = synth.snapshot(seed_roster, t=T)
    view = ViewState(roster=seed_roster, collapsed={"affixed"})
    assert len(tree_rows(snap, view)) < 8
    view.sort = "topology"
    assert [r.name for r in tree_rows(snap, view)] == [r.name for r in seed_roster]


def test_s_cycles_every_order_and_the_footer_names_it(seed_roster):
    snap = synth.snapshot(seed_roster, t=T)
    view = ViewState(roster=seed_roster, scroll=3)
    seen = []
    for _ in SORTS:
        press(view, "s", [], 10)
        seen.append(view.sort)
        footer = screen_of(render(snap, 100, 20, view=view, color="plain"), 100, 20).display[-1]
        assert (f"by {view.sort}" in footer) == (view.sort != "tree"), footer
    assert seen == [*SORTS[1:], SORTS[0]] and view.scroll == 0


def test_slash_types_a_filter_that_keeps_matches_and_their_ancestors(seed_roster):
    snap = synth.snapshot(seed_roster, t=T)
    view = ViewState(roster=seed_roster)
    for key in "/pical":
        assert press(view, key, [], 10) is None
    assert view.filtering and view.filter == "pical"
    screen = screen_of(render(snap, 100, 20, view=view, color="plain"), 100, 20)
    assert "filter nodes by name: pical_" in screen.display[-1]
    # seed: root → affixed → tubularia → subserviate → pical
    assert names_on_screen(snap, view, 100, 20) == ["root", "affixed", "tubularia", "subserviate", "pical"]
    text = "\n".join(screen.display)
    assert "└─ pical" in text and "├─" not in text  # each kept node is its father's last kept child
    press(view, "backspace", [], 10)
    press(view, "q", [], 10)  # a letter of the filter, not quit
    assert view.filter == "picaq" and press(view, "enter", [], 10) is None and not view.filtering
    assert names_on_screen(snap, view, 100, 20) == []
    assert "no node's name holds 'picaq'" in "\n".join(screen_of(render(snap, 100, 20, view=view), 100, 20).display)
    press(view, "esc", [], 10)  # closed line, no help open: Esc clears the filter
    assert view.filter == "" and len(names_on_screen(snap, view, 100, 20)) == 8


def test_a_flat_order_filters_without_ancestors(seed_roster):
    snap = synth.snapshot(seed_roster, t=T)
    view = ViewState(roster=seed_roster, sort="name", filter="a")
    assert [r.name for r in tree_rows(snap, view)] == sorted(r.name for r in seed_roster if "a" in r.name)
    footer = screen_of(render(snap, 100, 20, view=view, color="plain"), 100, 20).display[-1]
    assert "by name  /a" in footer


@settings(max_examples=examples(60))
@given(n=st.integers(1, 50), seed=st.integers(0, 10_000), extra=st.integers(0, 15),
       folded=st.sets(st.integers(0, 49), max_size=4), text=st.text("aeiorstn", min_size=1, max_size=3))
def test_a_filtered_tree_is_the_tree_pruned_to_matches_and_their_ancestors(n, seed, extra, folded, text):
    r = synth.topology(n, seed=seed, extra_edges=extra)
    names = [x.name for x in r]
    snap = synth.snapshot(r, seed=seed, t=T, initiator=names[seed % n])
    view = ViewState(roster=r, collapsed={names[i] for i in folded if i < n})
    whole = tree_rows(snap, view)
    assert _filtered_tree(whole, "") == whole  # nothing pruned: the same rows, lines and all
    view.filter = text
    kept = tree_rows(snap, view)
    fathers = {x.name: x.father for x in whole}
    expected = set()
    for x in whole:
        if text in x.name:
            name = x.name
            while name is not None:
                expected.add(name)
                name = fathers.get(name)
    assert [x.name for x in kept] == [x.name for x in whole if x.name in expected]  # the tree's order
    lines = render(snap, 120, 60, view=view, color="plain", now=T)
    assert len(lines) == 60 and all(len(visible(line)) <= 120 for line in lines)


@pytest.mark.parametrize("sort", SORTS)
def test_every_order_fits_its_terminal(sort):
    r = synth.topology(200, seed=3, extra_edges=30)
    snap = synth.snapshot(r, seed=3, t=T)
    lines = render(snap, 80, 24, view=ViewState(roster=r, sort=sort), color="truecolor", now=T)
    assert len(lines) == 24 and all(len(visible(line)) <= 80 for line in lines)
