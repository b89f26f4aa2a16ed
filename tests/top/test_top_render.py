"""The frame of ``ctl top``, read back from a terminal emulator (pyte): what a person sees."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budget import examples

import top_synthetic as synth
from top_frames import chars, roster, row_of, screen_of, visible
from ctl.top.render import FULL_SCALE, body_height, full_height, render, tree_rows
from ctl.top.style import gradient_rgb
from ctl.top.view import RosterNode, ViewState

T = 1_764_245_123.0
SEED_CPUS = {"root": 4, "affixed": 2, "haywagon": 6, "tubularia": 4, "preindemnifying": 6, "subserviate": 2,
             "pical": 8, "outwhirled": 6}


def seed_snapshot(seed_roster, **states):
    """The seed tree's snapshot with chosen (running, queued, done) per node."""
    snap = synth.snapshot(seed_roster, t=T, messages=14, elapsed_ms=2.5)
    for n in snap["nodes"]:
        running, queued, done = states.get(n["name"], (0, 0, 0))
        n.update(running=running, queued=queued, done=done, load=(running + queued) / n["cpus"], cpu_percent=12.0,
                 work=float(running + queued))  # tasks of 1 s
    return snap


def hexrgb(fg: str) -> tuple[int, int, int]:
    return int(fg[0:2], 16), int(fg[2:4], 16), int(fg[4:6], 16)


# -- the tree ------------------------------------------------------------------------


def test_seed_tree_at_80x24_glyphs_names_and_numbers(seed_roster):
    snap = seed_snapshot(seed_roster, root=(4, 12, 3), affixed=(2, 0, 7), pical=(1, 0, 0))
    view = ViewState(roster=seed_roster)
    view.observe(snap, T)
    screen = screen_of(render(snap, 80, 24, view=view, color="truecolor", now=T + 0.4), 80, 24)
    text = screen.display

    assert text[0].startswith("seed  8/8 nodes up  38 cpus  7 running · 12 queued · 10 done")
    assert "echo from root: 14 msgs, 2.5 ms, sampled 0.4 s ago" in text[1]
    # imbalance = max work per cpu over the cluster's: root 16 s / 4 over (16 + 2 + 1) s / 38 cpus
    assert f"imbalance {(16 / 4) / (19 / 38):.2f}" in text[1] and "imbalance 8.00" in text[1]
    tree = [line[1:26].rstrip() for line in text[4:12]]
    assert tree == [
        "root",
        "├─ affixed",
        "│  ├─ haywagon",
        "│  └─ tubularia",
        "│     ├─ preindemnifying",
        "│     └─ subserviate",
        "│        └─ pical",
        "└─ outwhirled",
    ]
    root = text[row_of(screen, "root")]
    assert root.split()[1:5] == ["4", "4/12", "3", "███████▶"]  # load 4 is past FULL_SCALE
    assert "4.00" in root and "12%" in root
    affixed = text[row_of(screen, "affixed")]
    assert "████····" in affixed and " 1.00 " in affixed  # half the bar: load 1 of FULL_SCALE 2
    assert all(len(line.rstrip()) <= 80 for line in text)


def test_selected_row_is_marked_and_reversed(seed_roster):
    snap = seed_snapshot(seed_roster)
    view = ViewState(roster=seed_roster, selected="tubularia")
    screen = screen_of(render(snap, 80, 24, view=view, color="none"), 80, 24)
    y = row_of(screen, "tubularia")
    x = screen.display[y].index("tubularia")
    assert screen.display[y][0] == "▶"
    assert all(c.reverse for c in chars(screen, y, x, len("tubularia")))
    other = row_of(screen, "haywagon")
    assert not any(c.reverse for c in screen.buffer[other].values())


def test_dag_lists_the_parents_the_tree_does_not_show():
    dag = roster("dag.toml")
    snap = synth.snapshot(dag, t=T, initiator="issuance")
    screen = screen_of(render(snap, 120, 30, view=ViewState(roster=dag), color="plain"), 120, 30)
    by_name = {n["name"]: n for n in snap["nodes"]}
    for r in dag:
        extra = [p for p in r.parents if p != by_name[r.name]["father"]]
        line = screen.display[row_of(screen, r.name)]
        if extra:
            assert f"also ← {', '.join(extra)}" in line, line
        else:
            assert "also" not in line, line


def test_cycle_says_when_the_wave_came_up_a_child():
    strong = roster("strong.toml")
    snap = synth.snapshot(strong, t=T, initiator="wagsome")
    rows = tree_rows(snap, ViewState(roster=strong))
    against = [r for r in rows if r.father is not None and r.father not in r.parents]
    assert against, "a BFS tree over a cycle has edges against the direction"
    screen = screen_of(render(snap, 200, 30, view=ViewState(roster=strong), color="plain"), 200, 30)
    for r in against:
        assert f"(via child {r.father})" in screen.display[row_of(screen, r.name)]


def test_tree_is_the_waves_spanning_tree_in_file_order():
    dag = roster("dag.toml")
    for initiator in ("issuance", "readiness"):
        snap = synth.snapshot(dag, t=T, initiator=initiator)
        rows = tree_rows(snap, ViewState(roster=dag))
        assert rows[0].name == initiator and rows[0].depth == 0
        assert sorted(r.name for r in rows) == sorted(r.name for r in dag)
        fathers = {n["name"]: n["father"] for n in snap["nodes"]}
        order = [r.name for r in dag]
        for i, r in enumerate(rows):
            assert r.father == fathers[r.name]
            if r.father is not None:  # a child comes after its father, siblings in file order
                assert [x.name for x in rows].index(r.father) < i
        for r in rows:
            kids = [x.name for x in rows if x.father == r.name]
            assert kids == sorted(kids, key=order.index)


# -- bars and colours -------------------------------------------------------------------


def test_bar_cells_run_green_to_red_in_truecolor(seed_roster):
    snap = seed_snapshot(seed_roster, root=(4, 12, 0), haywagon=(3, 0, 0))
    screen = screen_of(render(snap, 80, 24, view=ViewState(roster=seed_roster), color="truecolor"), 80, 24)
    y = row_of(screen, "root")
    x = screen.display[y].index("█")
    bar = chars(screen, y, x, 8)
    rgbs = [hexrgb(c.fg) for c in bar]
    assert rgbs[0][1] > rgbs[0][0]  # first cell green
    assert rgbs[-1][0] > 2 * rgbs[-1][1]  # last cell red
    assert bar[-1].data == "▶"  # load 4 is beyond the bar's FULL_SCALE
    hue = [g - r for r, g, _ in rgbs]  # green minus red falls along the bar
    assert hue == sorted(hue, reverse=True)
    # The number is in the colour of its load; half a bar (load 0.5) stays green.
    hay = row_of(screen, "haywagon")
    number = screen.display[hay].index("0.50")
    assert hexrgb(screen.buffer[hay][number].fg) == gradient_rgb(0.5)


def test_256_colours_and_16_colours_are_colours_too(seed_roster):
    snap = seed_snapshot(seed_roster, root=(4, 12, 0))
    for mode, marker in (("256", "\x1b[38;5;"), ("16", "\x1b[31m")):
        lines = render(snap, 80, 24, view=ViewState(roster=seed_roster), color=mode)
        assert any(marker in line for line in lines), mode
        screen = screen_of(lines, 80, 24)
        y = row_of(screen, "root")
        x = screen.display[y].index("█")
        assert screen.buffer[y][x].fg != "default"


@pytest.mark.parametrize("mode", ["none", "plain"])
def test_no_colour_means_no_colour(seed_roster, mode):
    snap = seed_snapshot(seed_roster, root=(4, 12, 0))
    view = ViewState(roster=seed_roster)
    view.observe(snap, T)
    view.observe_timeout(["pical"], T + 5)
    lines = render(snap, 100, 24, view=view, color=mode, now=T + 6)
    screen = screen_of(lines, 100, 24)
    for y in range(24):
        for c in screen.buffer[y].values():
            assert c.fg == "default" and c.bg == "default"
    assert not any("38;" in line for line in lines)
    if mode == "plain":
        assert not any("\x1b" in line for line in lines)
    else:  # attributes stay: the selection is still visible, the silent node still dim
        assert any(c.reverse for c in screen.buffer[row_of(screen, "root")].values())
        assert "\x1b[2m" in lines[row_of(screen, "pical")]


def test_ascii_fallback_has_no_byte_above_127(seed_roster):
    dag = roster("dag.toml")
    snap = synth.snapshot(dag, t=T)
    view = ViewState(roster=dag)
    view.observe(snap, T)
    view.observe_timeout(["crayer"], T + 1)
    lines = render(snap, 100, 24, view=view, color="truecolor", glyphs="ascii", now=T + 2)
    assert all(ord(ch) < 128 for line in lines for ch in line)
    text = "\n".join(visible(line) for line in lines)
    assert "|- " in text and "`- " in text and "also <- " in text and "x no answer since" in text
    seed = seed_snapshot(roster("seed.toml"), root=(4, 12, 0))
    lines = render(seed, 80, 24, view=ViewState(roster=roster("seed.toml")), glyphs="ascii")
    assert "#######>" in visible(lines[4])


# -- silent nodes -----------------------------------------------------------------------------


def test_silent_node_stays_dimmed_with_since_when(seed_roster):
    snap = seed_snapshot(seed_roster, pical=(2, 0, 9))
    view = ViewState(roster=seed_roster)
    view.observe(snap, T)
    view.observe_timeout(["pical"], T + 3, "echo wave timed out")
    lines = render(snap, 80, 24, view=view, color="truecolor", now=T + 20)
    screen = screen_of(lines, 80, 24)
    y = row_of(screen, "pical")
    since = time.strftime("%H:%M:%S", time.localtime(T + 3))
    assert f"✗ no answer since {since} (17 s)" in screen.display[y]
    x = screen.display[y].index("pical")
    assert all(c.fg == "787878" for c in chars(screen, y, x, 5))  # grey ...
    assert "\x1b[2m" in lines[y]  # ... and dim (pyte does not keep SGR 2)
    assert "7/8 nodes up" in screen.display[0]
    assert f"echo timed out {since} · silent: pical" in screen.display[1]
    assert "2 running" not in screen.display[0]  # a silent node's tasks are not counted
    # The other nodes keep their last numbers, not dimmed.
    other = row_of(screen, "subserviate")
    assert "\x1b[2m" not in lines[other].split("subserviate")[1]


def test_node_back_after_silence_is_drawn_normally(seed_roster):
    view = ViewState(roster=seed_roster)
    view.observe(seed_snapshot(seed_roster), T)
    view.observe_timeout(["pical"], T + 1)
    snap = seed_snapshot(seed_roster)
    view.observe(snap, T + 2)
    assert view.dead_since == {} and view.failure is None
    screen = screen_of(render(snap, 80, 24, view=view, color="plain", now=T + 2), 80, 24)
    assert "no answer" not in "\n".join(screen.display)
    assert "8/8 nodes up" in screen.display[0]


def test_node_no_wave_reached_hangs_dotted_under_its_parent(seed_roster):
    snap = synth.snapshot(seed_roster, t=T, missing=("subserviate", "pical"))
    view = ViewState(roster=seed_roster)
    view.observe(snap, T)  # a wave that came back without them: they are silent
    screen = screen_of(render(snap, 80, 24, view=view, color="plain"), 80, 24)
    assert "└╌ subserviate" in screen.display[row_of(screen, "subserviate")]
    assert "└╌ pical" in screen.display[row_of(screen, "pical")]
    assert "6/8 nodes up" in screen.display[0]


def test_before_any_wave_the_topology_is_drawn_unreached(seed_roster):
    view = ViewState(roster=seed_roster, cluster="seed")
    screen = screen_of(render(None, 80, 24, view=view, color="plain"), 80, 24)
    assert screen.display[0].startswith("seed  8 nodes")
    assert "waiting for the first echo wave" in screen.display[1]
    assert "├╌ affixed" in screen.display[5]
    assert screen.display[4].startswith("▶root")


# -- scrolling, collapsing, help, prompt -------------------------------------------------------


def big(n=200, seed=3):
    r = synth.topology(n, seed=seed, extra_edges=n // 5)
    return r, synth.snapshot(r, seed=seed, t=T)


def test_scrolling_a_page_at_a_time():
    r, snap = big()
    view = ViewState(roster=r)
    rows = [x.name for x in tree_rows(snap, view)]
    body = body_height(24)
    screen = screen_of(render(snap, 80, 24, view=view, color="plain"), 80, 24)
    assert f"rows 1→{body} of 200" in screen.display[23]
    view.page(rows, +1, body)
    screen = screen_of(render(snap, 80, 24, view=view, color="plain"), 80, 24)
    assert f"rows {body + 1}→{2 * body} of 200" in screen.display[23]
    assert rows[body] in screen.display[4] and rows[2 * body - 1] in screen.display[4 + body - 1]
    assert screen.display[4].startswith("▶")  # the selection moved a page down too
    for _ in range(20):
        view.page(rows, +1, body)
    screen = screen_of(render(snap, 80, 24, view=view, color="plain"), 80, 24)
    assert f"rows {200 - body + 1}→200 of 200" in screen.display[23]


def test_collapse_hides_a_subtree_and_counts_it(seed_roster):
    snap = seed_snapshot(seed_roster)
    view = ViewState(roster=seed_roster, selected="tubularia")
    rows = [r.name for r in tree_rows(snap, view)]
    view.toggle_collapse(rows)
    screen = screen_of(render(snap, 80, 24, view=view, color="plain"), 80, 24)
    text = "\n".join(screen.display)
    assert "tubularia [+3]" in text
    for hidden in ("preindemnifying", "subserviate", "pical"):
        assert hidden not in text
    assert "└─ outwhirled" in text
    view.toggle_collapse([r.name for r in tree_rows(snap, view)])
    assert "pical" in "\n".join(screen_of(render(snap, 80, 24, view=view, color="plain"), 80, 24).display)


def test_help_and_prompt_and_status(seed_roster):
    snap = seed_snapshot(seed_roster)
    view = ViewState(roster=seed_roster, show_help=True)
    text = "\n".join(screen_of(render(snap, 80, 24, view=view, color="plain"), 80, 24).display)
    assert "one balancing round now" in text and "tasks add up (a consistent cut)" in text
    view = ViewState(roster=seed_roster, selected="haywagon", prompt="12")
    screen = screen_of(render(snap, 80, 24, view=view, color="truecolor"), 80, 24)
    assert "submit tasks at haywagon, how many? 12_" in screen.display[23]
    view = ViewState(roster=seed_roster)
    view.note("submitted 5 tasks at haywagon", T)
    assert "submitted 5 tasks at haywagon" in screen_of(render(snap, 80, 24, view=view, now=T + 1), 80, 24).display[23]
    assert "submitted" not in screen_of(render(snap, 80, 24, view=view, now=T + 60), 80, 24).display[23]


def test_header_reports_balancing_finn_pause_and_trend(seed_roster):
    view = ViewState(roster=seed_roster, auto_balance=True, paused=True)
    view.observe(seed_snapshot(seed_roster, root=(4, 4, 0), affixed=(2, 0, 0)), T)  # (8/4) / (10/38) = 7.6
    snap = seed_snapshot(seed_roster, root=(4, 12, 0))  # (16/4) / (16/38) = 9.5: all the work on root
    view.observe(snap, T + 1)
    view.observe_balance({"moves": [{"from": "root", "to": "pical", "tasks": ["a", "b", "c"]},
                                    {"from": "root", "to": "haywagon", "tasks": ["d"]}],
                          "imbalance_before": 5.33, "imbalance_after": 2.1, "elapsed_ms": 30.0}, T + 1)
    view.observe_finn({"decided": ["root", "affixed"], "undecided": ["pical"], "messages": 7,
                       "elapsed_ms": 4.25}, T + 2)
    screen = screen_of(render(snap, 100, 24, view=view, color="truecolor", now=T + 4), 100, 24)
    assert "PAUSED" in screen.display[0]
    assert all(c.reverse for c in chars(screen, 0, screen.display[0].index("PAUSED"), 6))
    assert "imbalance 9.50 ↑" in screen.display[1]
    assert "balance: 2 moves, 4 tasks, 5.33 → 2.10, 3.0 s ago AUTO" in screen.display[2]
    assert "finn: 2/3 decided, 7 msgs, 4.2 ms, 2.0 s ago" in screen.display[2]
    view.observe(seed_snapshot(seed_roster, root=(4, 0, 0), affixed=(2, 0, 0)), T + 5)  # (4/4) / (6/38)
    assert "imbalance 6.33 ↓" in screen_of(render(snap, 100, 24, view=view, now=T + 5), 100, 24).display[1]


def test_header_shows_the_round_and_wave_the_nodes_report_whoever_started_them(seed_roster):
    """This view started nothing: what the header says comes from the samples
    (daemon/core/snapshot.py last_round, last_finn); a result of its own adds what only
    the starter knows, and its own newer round that moved nothing shows as such."""
    from daemon.core.waves import new_wave_id

    rnd, fw = new_wave_id("m", int((T - 12) * 1e9), "r"), new_wave_id("f", int((T - 3) * 1e9), "w")
    snap = seed_snapshot(seed_roster)
    by_name = {n["name"]: n for n in snap["nodes"]}
    by_name["subserviate"]["last_round"] = [rnd, T - 11.9, 2, 14, 0, 0]
    by_name["pical"]["last_round"] = [rnd, T - 11.9, 0, 0, 1, 8]
    for name in ("root", "affixed", "haywagon", "tubularia", "preindemnifying", "outwhirled"):
        by_name[name]["last_finn"] = [fw, T - 2.9, 1, 2 if name in ("root", "affixed", "tubularia") else 0]
    view = ViewState(roster=seed_roster)
    view.observe(snap, T)
    line = screen_of(render(snap, 120, 24, view=view, now=T), 120, 24).display[2]
    assert "balance: 2 moves, 14 tasks, 12 s ago" in line, line
    assert "finn: 6/8 decided, 6 msgs, 6 tasks, 3.0 s ago" in line, line
    view.observe_balance({"round_id": rnd, "moves": [], "imbalance_before": 7.0, "imbalance_after": 1.5}, T - 11)
    view.observe_finn({"wave": fw, "decided": [], "undecided": [], "elapsed_ms": 9.5}, T - 2)
    line = screen_of(render(snap, 120, 24, view=view, now=T), 120, 24).display[2]
    assert "balance: 2 moves, 14 tasks, 7.00 → 1.50, 12 s ago" in line, line
    assert "finn: 6/8 decided, 6 msgs, 6 tasks, 9.5 ms, 3.0 s ago" in line, line
    later = new_wave_id("m", int((T - 1) * 1e9), "s")
    view.observe_balance({"round_id": later, "moves": [], "imbalance_before": 1.1, "imbalance_after": 1.1}, T - 1)
    line = screen_of(render(snap, 120, 24, view=view, now=T), 120, 24).display[2]
    assert "balance: 0 moves, 0 tasks, 1.10 → 1.10, 1.0 s ago" in line, line


# -- sizes -------------------------------------------------------------------------------------


def test_200_nodes_at_200x60():
    r, snap = big()
    view = ViewState(roster=r)
    for k in range(40):
        view.observe(synth.snapshot(r, seed=k, t=T + k), T + k)
    lines = render(snap, 200, 60, view=view, color="truecolor", now=T + 40)
    assert len(lines) == 60
    assert max(len(visible(line)) for line in lines) <= 200
    screen = screen_of(lines, 200, 60)
    rows = tree_rows(snap, view)
    for y, row in enumerate(rows[: body_height(60)]):
        assert row.name in screen.display[4 + y]
    assert "200/200 nodes up" in screen.display[0]
    assert "rows 1→55 of 200" in screen.display[59]
    # the sparkline of the last 32 waves, newest on the right
    spark = screen.display[4].split("%")[-1].strip()
    assert len(spark) == 32 and set(spark) <= set("▁▂▃▄▅▆▇█")


def test_full_height_shows_every_row(seed_roster):
    snap = seed_snapshot(seed_roster)
    view = ViewState(roster=seed_roster, interactive=False)
    h = full_height(snap, view)
    lines = render(snap, 100, h, view=view, color="plain")
    assert h == 4 + 8 + 1 and "outwhirled" in lines[-2]
    assert "rows" not in lines[-1] and "quit" not in lines[-1]  # a legend, not keys


def test_too_small_says_so():
    lines = render(None, 30, 5, color="truecolor")
    assert len(lines) == 5 and "too small" in "".join(lines) and all(len(x) <= 30 for x in lines)


def test_status_messages_are_one_clean_line(seed_roster):
    snap = seed_snapshot(seed_roster)
    view = ViewState(roster=seed_roster)
    view.note("submit failed: node pical:\nqueue full \x1b[2J… done", T)
    for glyphs in ("unicode", "ascii"):
        footer = render(snap, 80, 24, view=view, color="plain", glyphs=glyphs, now=T)[-1]
        assert "\n" not in footer and "\x1b" not in footer
        assert "node pical: queue full ?[2J" in footer
        assert ("… done" in footer) == (glyphs == "unicode")


def test_names_cannot_inject_escapes():
    r = (RosterNode("\x1b[31mevil", (), 2),)
    snap = {"cluster": "x\x1b[2J", "wave": "e", "initiator": "\x1b[31mevil", "messages": 0, "elapsed_ms": 0,
            "time": T, "nodes": [synth.node(name="\x1b[31mevil")]}
    lines = render(snap, 80, 24, view=ViewState(roster=r), color="plain")
    assert not any("\x1b" in line for line in lines)
    assert "?[31mevil" in lines[4]


@settings(max_examples=examples(60))
@given(
    n=st.integers(1, 60), seed=st.integers(0, 10_000), extra=st.integers(0, 20),
    width=st.integers(40, 220), height=st.integers(8, 70),
    silent=st.sets(st.integers(0, 59), max_size=5), folded=st.sets(st.integers(0, 59), max_size=5),
    scroll=st.integers(0, 80), mode=st.sampled_from(["truecolor", "256", "16", "none", "plain"]),
    glyphs=st.sampled_from(["unicode", "ascii"]),
)
def test_any_frame_fits_its_terminal(n, seed, extra, width, height, silent, folded, scroll, mode, glyphs):
    r = synth.topology(n, seed=seed, extra_edges=extra)
    names = [x.name for x in r]
    gone = {names[i] for i in silent if i < n}
    snap = synth.snapshot(r, seed=seed, t=T, initiator=names[seed % n], missing=gone if seed % 2 else ())
    view = ViewState(roster=r, scroll=scroll, collapsed={names[i] for i in folded if i < n})
    view.observe(snap, T)
    if gone:
        view.observe_timeout(sorted(gone), T + 1)
    lines = render(snap, width, height, view=view, color=mode, glyphs=glyphs, now=T + 2)
    assert len(lines) == height
    assert all(len(visible(line)) <= width for line in lines)
    if glyphs == "ascii":
        assert all(ord(c) < 128 for line in lines for c in line)
    rows = tree_rows(snap, view)
    assert len({x.name for x in rows}) == len(rows)  # each node at most once
    hidden = sum(x.hidden for x in rows)
    assert len(rows) + hidden == n  # every node is drawn, or counted in a collapsed subtree
    if rows:
        first = min(scroll, max(0, len(rows) - body_height(height)))
        assert rows[first].name[:4] in visible(lines[4])


def test_load_beyond_full_scale_is_clamped_not_wrapped():
    r = (RosterNode("a", (), 1),)
    snap = {"cluster": "c", "wave": "e", "initiator": "a", "messages": 0, "elapsed_ms": 0, "time": T,
            "nodes": [synth.node(name="a", cpus=1, running=1, queued=500)]}
    view = ViewState(roster=r)
    view.observe(snap, T)
    line = visible(render(snap, 100, 10, view=view, color="plain")[4])
    assert "501" in line and "███████████▶" in line and "█" in line[-20:]
    assert FULL_SCALE == 2.0
